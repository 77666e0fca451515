"""The cases of the driver differential test (drivers_diff.py; see README.md).

Each DriverCase is one connection string an app hands its driver, taken from that driver's own
documentation (`source`, as cited in the dialect notes) or from the issue that asked for
`--driver`, with the fake servers it runs against. Every string runs once per peer variant:

* trust     plain server (answers 'N' to SSLRequest), trust authentication
* password  plain server ('N' to SSLRequest), cleartext password authentication (records it)
* tls       TLS server with a certificate from the run's private CA (not in any system store,
            not in ~/.postgresql/root.crt unless the case puts it there), password auth
* standby   (cases that name it) the first listener is a hot standby, the others primaries
* hostssl   (cases that name it) TLS server that rejects plaintext logins with 28000

`listeners` are the labels of the peer (NAME:PORT with NAME from drivers_diff.HOSTS, or
unix:/path/.s.PGSQL.PORT); every listener of a case gets the variant's behaviour.

`expect_pgwait_refuses`: the driver's behaviour is a bug that pgwait must refuse to imitate;
compared as "the driver does not connect, and pgwait exits 2". `env`/`files` as in corpus.py
({tmp}, {home}, {certs}; "@certs/NAME" copies a certificate). The driver names the pgwait
run uses are in DRIVERS.
"""

from dataclasses import dataclass, field

# group -> (pgwait --driver NAME, reference client)
DRIVERS = {
    "jdbc": "jdbc",
    "node-postgres": "node-postgres",
    "pgx": "pgx",
    "rails": "rails",
    "asyncpg": "asyncpg",
    "sqlalchemy": "asyncpg",  # postgresql+asyncpg:// URLs; pgwait reads them as asyncpg
}

DEFAULT_VARIANTS = ("trust", "password", "tls")


@dataclass
class DriverCase:
    driver: str
    url: str
    source: str
    listeners: list
    variants: tuple = DEFAULT_VARIANTS
    env: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    expect_pgwait_refuses: str = None  # the reason, when pgwait must exit 2
    note: str = ""
    variant: str = ""  # filled in per run
    name: str = ""

    def behaviours(self, variant):
        beh = {
            "trust": {"auth": "trust"},
            "password": {"auth": "password"},
            "tls": {"tls": True, "auth": "password"},
            "standby": {"auth": "password"},
            "hostssl": {"tls": True, "auth": "password", "reject_plain": "28000"},
        }[variant]
        out = {}
        for i, label in enumerate(self.listeners):
            b = dict(beh)
            if variant == "standby" and i == 0:
                b["primary"] = False
            out[label] = b
        return out


BASE = []


def case(driver, url, source, listeners, **kw):
    BASE.append(DriverCase(driver, url, source, list(listeners), **kw))


SOCK = "unix:/var/run/postgresql/.s.PGSQL.5432"
ROOT_CRT = {".postgresql/root.crt": "@certs/ca.crt"}

# ---------------------------------------------------------------------------------------------
# pgjdbc 42.5.5 (Debian libpostgresql-jdbc-java); docs/content/documentation/use.md (REL42.7.13)
# ---------------------------------------------------------------------------------------------
J = "pgjdbc docs/content/documentation/use.md"
case("jdbc", "jdbc:postgresql://db1:5432,db2:5432/app?user=u&password=p&targetServerType=primary&ssl=true",
     "issue: --driver jdbc example", ["db1:5432", "db2:5432"],
     variants=("trust", "password", "tls", "standby"), files=ROOT_CRT,
     note="ssl=true is verify-full; ~/.postgresql/root.crt holds the private CA")
case("jdbc", "jdbc:postgresql://db1:5432,db2:5432/app?user=u&password=p&targetServerType=primary&ssl=true",
     "issue: --driver jdbc example (no root.crt)", ["db1:5432", "db2:5432"], variants=("tls",),
     note="verify-full without a root file: pgjdbc cannot open ~/.postgresql/root.crt")
case("jdbc", "jdbc:postgresql:database?user=u&password=p", J + ":74", ["localhost:5432"])
case("jdbc", "jdbc:postgresql://host/database?user=u&password=p", J + ":76", ["host:5432"])
case("jdbc", "jdbc:postgresql://host/?user=u&password=p", J + ":77", ["host:5432"])
case("jdbc", "jdbc:postgresql://host:5433/database?user=u&password=p", J + ":78 (port filled in)", ["host:5433"])
case("jdbc", "jdbc:postgresql://[::1]:5740/accounting?user=u&password=p", J + ":83", ["[::1]:5740"])
case("jdbc", "jdbc:postgresql://localhost/test?user=fred&password=secret&ssl=true", J + ":114",
     ["localhost:5432"], files=ROOT_CRT)
case("jdbc", "jdbc:postgresql://localhost:5432/postgres?user=u&password=p&options=-c%20search_path=test,public,pg_catalog%20-c%20statement_timeout=90000",
     J + ":135", ["localhost:5432"])
case("jdbc", "jdbc:postgresql://node1,node2,node3/accounting?user=u&password=p&targetServerType=primary",
     J + ":577", ["node1:5432", "node2:5432", "node3:5432"], variants=("trust", "standby"))
case("jdbc", "jdbc:postgresql://localhost:5432/test?user=u&password=p&prepareThreshold=3",
     "pgjdbc docs/content/documentation/server-prepare.md:582", ["localhost:5432"])
case("jdbc", "jdbc:postgresql://localhost/davec?user=u&password=p&ApplicationName=billing",
     "pgjdbc docs/content/documentation/datasource.md:293 (+ ApplicationName, use.md property list)",
     ["localhost:5432"], variants=("trust",))
case("jdbc", "jdbc:postgresql://db/app?user=u&password=p&sslmode=require", "pgjdbc use.md sslmode (require: no verification)",
     ["db:5432"])
case("jdbc", "jdbc:postgresql://db/app?user=u&password=p&ssl=false", "pgjdbc use.md ssl (ssl=false still means prefer)",
     ["db:5432"], variants=("password", "tls", "hostssl"))

# ---------------------------------------------------------------------------------------------
# node-postgres 8.8.0 / pg-connection-string 2.5.0 (Debian node-pg)
# ---------------------------------------------------------------------------------------------
N_PCS = "brianc/node-postgres packages/pg-connection-string/README.md"
case("node-postgres", "postgres://user:password@host:5432/database", "node-postgres docs/pages/apis/client.mdx:18",
     ["host:5432"])
case("node-postgres", "postgresql://dbuser:secretpassword@database.server.com:3211/mydb",
     "node-postgres docs/pages/features/connecting.mdx:139", ["database.server.com:3211"])
case("node-postgres", "postgres://user:password@host:5432/db?sslmode=require",
     "node-postgres docs/pages/features/ssl.mdx:44 (port filled in)", ["host:5432"])
case("node-postgres", "postgres://user:password@host:5432/db?sslmode=require&sslnegotiation=direct",
     "node-postgres docs/pages/features/ssl.mdx:71 (port filled in; pg 8.8 ignores sslnegotiation)", ["host:5432"])
case("node-postgres", "postgres://someuser:somepassword@somehost:381/somedatabase", N_PCS + ":17", ["somehost:381"])
case("node-postgres", "socket://user:pass@/var/run/postgresql?db=app&encoding=utf8",
     N_PCS + ":70-75 (socket dir of the namespace)", [SOCK], variants=("trust", "password"))
case("node-postgres", "/var/run/postgresql app", N_PCS + ":68 (socket dir of the namespace)", [SOCK],
     variants=("trust",), env={"USER": "app"})
case("node-postgres", "salesdata", N_PCS + " (a bare relative URL)", ["localhost:5432"],
     variants=("trust",), env={"USER": "app"})
case("node-postgres", "pg://u:p@db/app?ssl=1", N_PCS + " (ssl=1)", ["db:5432"])
case("node-postgres", "postgres://u:p@db/app?ssl=true", "issue: --driver node-postgres example", ["db:5432"])
case("node-postgres", "postgres://u:p@db/app?ssl=0", N_PCS + " (ssl=0)", ["db:5432"])
case("node-postgres", "postgres://u:p@db/app?sslmode=no-verify", "issue: --driver node-postgres example; " + N_PCS,
     ["db:5432"])
case("node-postgres", "postgres://u:p@db/app?ssl=false", N_PCS + " (ssl=false)", ["db:5432"],
     expect_pgwait_refuses="pg 8.8 reads ssl=false as the string 'false': it sends SSLRequest and "
     "crashes on 'S', or fails on 'N'; it never connects")
case("node-postgres", "postgres://u:p@db/app?host=/var/run/postgresql", N_PCS + " (host= overrides the URL's host)",
     [SOCK], variants=("trust", "password"))

# ---------------------------------------------------------------------------------------------
# pgx v4.15.0 / pgconn v1.11.0 (Debian golang-github-jackc-pgx-v4-dev)
# ---------------------------------------------------------------------------------------------
case("pgx", "postgres://u:p@db/app?pool_max_conns=10&pool_min_conns=2", "issue: --driver pgx example", ["db:5432"])
case("pgx", "postgres://username:password@localhost:5432/database_name", "jackc/pgx README.md:29", ["localhost:5432"])
case("pgx", "postgres://jack:secret@pg.example.com:5432/mydb?sslmode=verify-ca", "jackc/pgconn config.go:124 (v1.11)",
     ["pg.example.com:5432"])
case("pgx", "postgres://jack:secret@pg.example.com:5432/mydb?sslmode=verify-ca", "jackc/pgconn config.go:124 (v1.11), root.crt present",
     ["pg.example.com:5432"], variants=("tls",), files=ROOT_CRT)
case("pgx", "user=jack password=secret host=pg.example.com port=5432 dbname=mydb sslmode=verify-ca",
     "jackc/pgconn config.go:121 (v1.11)", ["pg.example.com:5432"])
case("pgx", "postgres://jack:secret@foo.example.com:5432,bar.example.com:5432/mydb", "jackc/pgconn config.go:136 (v1.11)",
     ["foo.example.com:5432", "bar.example.com:5432"], variants=("trust", "password", "tls", "hostssl"))
case("pgx", "postgres://jack:secret@pg.example.com:5432/mydb?sslmode=verify-ca&pool_max_conns=10",
     "jackc/pgx pgxpool/pool.go:261 (v4)", ["pg.example.com:5432"])
case("pgx", "postgres://jack:secret@pg.example.com:5432/mydb?pool_max_conns=10&pool_max_conn_lifetime=1h30m",
     "jackc/pgx pgxpool/pool.go:358 (v5; sslmode=verify-ca dropped)", ["pg.example.com:5432"])
case("pgx", "postgres://jack:secret@pg.example.com:5432/mydb?application_name=worker&search_path=app",
     "jackc/pgconn config.go doc: every other key is a run-time parameter", ["pg.example.com:5432"], variants=("trust",))
case("pgx", "postgres://u:p@db/app?sslmode=require", "jackc/pgconn config.go doc (sslmode)", ["db:5432"])
case("pgx", "postgres:///app?host=/var/run/postgresql&user=u&password=p", "jackc/pgconn config.go doc (unix socket via host=)",
     [SOCK], variants=("trust", "password"))
case("pgx", "postgres://u:p@db1,db2/app?target_session_attrs=read-write", "jackc/pgconn config.go doc (target_session_attrs)",
     ["db1:5432", "db2:5432"], variants=("trust", "standby"))

# ---------------------------------------------------------------------------------------------
# Rails: ActiveRecord 6.1.7 + ruby-pg 1.4.5 + libpq 15 (Debian ruby-activerecord, ruby-pg)
# ---------------------------------------------------------------------------------------------
R = "rails/rails guides/source/configuring.md"
case("rails", "postgres://u:p@db/app?pool=5&encoding=unicode&prepared_statements=false",
     "issue: --driver rails example", ["db:5432"])
case("rails", "postgresql://localhost/blog_development?pool=5", R + " (v6.1.7.10 :1132)", ["localhost:5432"],
     env={"PGUSER": "u", "PGPASSWORD": "p"})
case("rails", "postgresql://localhost/my_database", R + " Connection Preference", ["localhost:5432"],
     env={"PGUSER": "u", "PGPASSWORD": "p"})
case("rails", "postgres://myuser:mypass@localhost/somedatabase",
     "rails/rails railties .../templates/config/databases/postgresql.yml.tt:74", ["localhost:5432"])
case("rails", "postgres://postgres:postgres@localhost:5432", "rails/rails railties .../templates/github/ci.yml.tt:145",
     ["localhost:5432"])
case("rails", "postgresql://foo:bar@localhost:9000/foo_test?pool=5&timeout=3000",
     "rails/rails activerecord connection_url_resolver.rb:12", ["localhost:9000"])
case("rails", "postgres://localhost/foo", "rails/rails activerecord database_configurations/url_config.rb:13",
     ["localhost:5432"], env={"PGUSER": "u", "PGPASSWORD": "p"})
case("rails", "postgres://u:p@db/app?sslmode=require", "rails/rails postgresql_adapter (libpq keys pass through)",
     ["db:5432"])
case("rails", "postgres://u:p@db/app?sslmode=verify-full", "rails/rails postgresql_adapter (libpq keys pass through), root.crt",
     ["db:5432"], variants=("tls",), files=ROOT_CRT)
case("rails", "postgres:///?user=user&password=secret&dbname=app", "rails/rails activerecord CHANGELOG 7.0 (c9b25c89ae4)",
     [SOCK], variants=("trust", "password"), note="6.1 drops the query password")
case("rails", "postgres://u:p@db/app?application_name=web", "rails/rails postgresql_adapter (libpq keys pass through)",
     ["db:5432"], variants=("trust",))

# ---------------------------------------------------------------------------------------------
# asyncpg 0.32.0 (PyPI); docs api/index.html#connection and connection.py docstring
# ---------------------------------------------------------------------------------------------
A = "MagicStack/asyncpg asyncpg/connection.py connect() docstring"
case("asyncpg", "postgres://user:password@host:5432/database?application_name=app", A + " :2150 (option=value filled in)",
     ["host:5432"])
case("asyncpg", "postgresql://postgres@localhost/test", "MagicStack/asyncpg README.rst", ["localhost:5432"],
     env={"PGPASSWORD": "p"})
case("asyncpg", "postgresql://user:pass@host1:5432,host2:5433/db?target_session_attrs=read-write",
     A + " (multiple hosts, target_session_attrs)", ["host1:5432", "host2:5433"], variants=("trust", "standby"))
case("asyncpg", "postgresql:///mydb?host=/var/run/postgresql", A + " (host= a socket directory)", [SOCK],
     variants=("trust",), env={"PGUSER": "u"})
case("asyncpg", "postgresql://u:p@db/app?sslmode=verify-full&sslrootcert={certs}/ca.crt",
     A + " (sslmode, sslrootcert; path of the run's CA)", ["db:5432"])
case("asyncpg", "postgresql://u:p@h1/db?application_name=worker&search_path=app", A + " (other keys are server settings)",
     ["h1:5432"], variants=("trust",))
case("asyncpg", "postgres://u:p%40ss@db/app?sslmode=require", A + " (percent-encoded password)", ["db:5432"])
case("asyncpg", "postgresql://u:p@db/app", A + " (default sslmode prefer)", ["db:5432"])
case("asyncpg", "postgresql://u:p@db/app?sslmode=disable", A + " (sslmode=disable)", ["db:5432"])

# ---------------------------------------------------------------------------------------------
# SQLAlchemy 2.1.9 + asyncpg (PyPI); docs dialects/postgresql.html#module-...asyncpg
# ---------------------------------------------------------------------------------------------
S = "sqlalchemy/sqlalchemy lib/sqlalchemy/dialects/postgresql/asyncpg.py docstring"
case("sqlalchemy", "postgresql+asyncpg://u:p@db/app?ssl=require", "issue: --driver asyncpg SQLAlchemy example", ["db:5432"])
case("sqlalchemy", "postgresql+asyncpg://user:pass@hostname/dbname", S + " (connect string)", ["hostname:5432"])
case("sqlalchemy", "postgresql+asyncpg://scott:tiger@localhost/test", "SQLAlchemy docs orm/extensions/asyncio.rst",
     ["localhost:5432"])
case("sqlalchemy", "postgresql+asyncpg://user:pass@hostname/dbname?prepared_statement_cache_size=500",
     S + " (prepared statement cache)", ["hostname:5432"], variants=("trust",))
case("sqlalchemy", "postgresql+asyncpg://user:pass@/dbname?host=HostA:5432&host=HostB:5432",
     "SQLAlchemy docs dialects/postgresql.rst (multiple hosts, asyncpg)", ["hosta:5432", "hostb:5432"],
     variants=("trust", "password"))
case("sqlalchemy", "postgresql+asyncpg://u:p@db/app?ssl=disable", S + " (ssl=)", ["db:5432"])
case("sqlalchemy", "postgresql+asyncpg://u:p@db/app?sslmode=require",
     "SQLAlchemy docs: libpq's sslmode is not an asyncpg.connect() argument", ["db:5432"], variants=("tls",),
     expect_pgwait_refuses="asyncpg.connect() gets sslmode= as a keyword argument: TypeError on every connect")
case("sqlalchemy", "postgresql+asyncpg://u:p@db:6432/app", S + " (port)", ["db:6432"], variants=("trust",))
case("sqlalchemy", "postgresql+asyncpg://u:p@db/app?target_session_attrs=primary", S + " (asyncpg kwargs)",
     ["db:5432"], variants=("trust", "standby"))


def expand():
    out = []
    for c in BASE:
        for v in c.variants:
            d = DriverCase(**{k: getattr(c, k) for k in c.__dataclass_fields__})
            d.variant = v
            d.name = "%s %s [%s%s]" % (c.driver, c.url, v, ", root.crt" if c.files == ROOT_CRT else "")
            out.append(d)
    return out


CASES = expand()

# case name -> reason for a deliberate, documented difference between the driver and pgwait
# pgx v4 expands its fallbacks before its addresses (pgconn.go expandWithIPs): TLS on every
# address of a name, then plain text on every address. pgwait tries each address in turn, TLS then
# plain: for a name with two addresses (localhost: 127.0.0.1 and ::1) pgx makes one TLS request
# more; the server that answers and the verdict are the same.
_PGX_FALLBACKS = ("pgx tries TLS on every address of a name before plain text on any; pgwait goes "
                  "address by address: one SSLRequest fewer, same server, same verdict")

ALLOWED = {
    "rails postgres:///?user=user&password=secret&dbname=app [password]":
        "pgwait reads Rails 7.0+ URLs (the query wins over the URL's parts, CHANGELOG 7.0 "
        "c9b25c89ae4); Debian's ActiveRecord 6.1 drops ?password= and fails with fe_sendauth",
    "jdbc jdbc:postgresql://db1:5432,db2:5432/app?user=u&password=p&targetServerType=primary&ssl=true [tls]":
        "verify-full without ~/.postgresql/root.crt: pgjdbc notices after the server's 'S' (on every "
        "host), pgwait before connecting; both fail for good (08006 / exit 3)",
    "pgx postgres://username:password@localhost:5432/database_name [trust]": _PGX_FALLBACKS,
    "pgx postgres://username:password@localhost:5432/database_name [password]": _PGX_FALLBACKS,
}
