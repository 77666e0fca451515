"""asyncpg / SQLAlchemy probe for drivers_diff.py.
Usage: pycheck.py asyncpg|sqlalchemy URL. asyncpg: asyncpg.connect(url) + SELECT 1; sqlalchemy:
create_async_engine (+asyncpg, +psycopg_async) or create_engine, connect, SELECT 1. Prints OK
(exit 0) or ERROR <class>: <message> (exit 1). Adapted from notes/dialects/scripts/*_probe.py."""
import asyncio
import sys


async def run_asyncpg(url):
    import asyncpg
    conn = await asyncpg.connect(url, timeout=8)
    try:
        return await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def run_sqlalchemy(url):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    if make_url(url).get_driver_name() in ("asyncpg", "psycopg_async"):
        from sqlalchemy.ext.asyncio import create_async_engine

        async def main():
            eng = create_async_engine(url)
            try:
                async with eng.connect() as c:
                    return (await c.execute(text("SELECT 1"))).scalar()
            finally:
                await eng.dispose()
        return asyncio.run(main())
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text("SELECT 1")).scalar()
    finally:
        eng.dispose()


try:
    if sys.argv[1] == "asyncpg":
        v = asyncio.run(run_asyncpg(sys.argv[2]))
    else:
        v = run_sqlalchemy(sys.argv[2])
except Exception as e:
    orig = getattr(e, "orig", None)
    extra = " [orig %s]" % type(orig).__qualname__ if orig is not None else ""
    print(("ERROR %s.%s%s: %s" % (type(e).__module__, type(e).__qualname__, extra, e)).splitlines()[0])
    sys.exit(1)
print("OK %r" % (v,))
sys.exit(0)
