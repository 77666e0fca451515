"""The cases of the differential test (see README.md): connection inputs and fake servers.

A Case names its inputs (the -d string, psql-style flags, environment, files under HOME or
the case's temp dir) and the listeners of the recording peer. Placeholders in dsn, flags, env
values, file names and file contents: {tmp} the case's temp dir, {home} its HOME, {certs} the
directory of the run's certificates (ca.crt, other-ca.crt, server.crt, client.crt, client.key).
A file's content "@certs/NAME" copies that certificate file; (content, mode) sets the mode
(default 0600).

Listener labels: "NAME:PORT" (NAME from the harness's /etc/hosts, an IPv4 address or [IPv6]),
"unix:/dir/.s.PGSQL.PORT". Behaviour keys: auth (trust | password | md5 | scram | oauth),
password (expected; a mismatch gets 28P01), tls (accept SSLRequest and direct TLS),
client_cert (ask for a client certificate), error (SQLSTATE sent instead of the login;
3D000 after AuthenticationOk), reject_tls / reject_plain (pg_hba hostnossl / hostssl),
primary (False: a hot standby), proto30 (answer a 3.2 startup with NegotiateProtocolVersion
3.0).

Sources: libpq's TAP tests in postgres/postgres (src/interfaces/libpq/t/*.pl), the rest is
this project's own list of libpq 18 rules ("own: <rule>").
"""

from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    dsn: object = None  # the -d text, or None for no -d
    flags: list = field(default_factory=list)  # psql-style -h/-p/-U
    env: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    listeners: dict = field(default_factory=dict)
    source: str = "own"
    unordered: bool = False  # load_balance_hosts=random: compare the records as a set


CASES = []


def case(name, dsn=None, *, flags=(), env=None, files=None, listeners=None, source="own",
         unordered=False):
    CASES.append(Case(name, dsn, list(flags), dict(env or {}), dict(files or {}),
                      dict(listeners if listeners is not None else {"h1:5432": T}), source,
                      unordered))


T = {"auth": "trust"}
PW = {"auth": "password"}
MD5 = {"auth": "md5"}
SCRAM = {"auth": "scram"}
TLS = {"tls": True}
TLS_PW = {"tls": True, "auth": "password"}
STARTING = {"error": "57P03"}
SOCK = "unix:/var/run/postgresql/.s.PGSQL.5432"
SOCK_TMP = "unix:/tmp/.s.PGSQL.5432"
CA = "sslrootcert={certs}/ca.crt"

# ---------------------------------------------------------------------------------------------
# (a) src/interfaces/libpq/t/001_uri.pl: every URI, with listeners where it points
# ---------------------------------------------------------------------------------------------
URI_SRC = "postgres/postgres src/interfaces/libpq/t/001_uri.pl"
URI_LISTENERS = {
    "host:5432": T, "host:12345": T, "[::1]:5432": T, "[::1]:12345": T, "127.0.0.1:5432": T,
    SOCK: T, "unix:/var/run/postgresql/.s.PGSQL.12345": T,
}
URIS = [
    "postgresql://uri-user:secret@host:12345/db",
    "postgresql://uri-user@host:12345/db",
    "postgresql://uri-user@host/db",
    "postgresql://host:12345/db",
    "postgresql://host/db",
    "postgresql://uri-user@host:12345/",
    "postgresql://uri-user@host/",
    "postgresql://uri-user@",
    "postgresql://host:12345/",
    "postgresql://host:12345",
    "postgresql://host/",
    "postgresql://host",
    "postgresql://",
    "postgresql://?hostaddr=127.0.0.1",
    "postgresql://example.com?hostaddr=63.1.2.4",
    "postgresql://%68ost/",
    "postgresql://host/db?user=uri-user",
    "postgresql://host/db?user=uri-user&port=12345",
    "postgresql://host/db?u%73er=someotheruser&port=12345",
    "postgresql://host/db?u%7aer=someotheruser&port=12345",
    "postgresql://host:12345?user=uri-user",
    "postgresql://host?user=uri-user",
    "postgresql://host?",
    "postgresql://[::1]:12345/db",
    "postgresql://[::1]/db",
    "postgresql://[2001:db8::1234]/",
    "postgresql://[200z:db8::1234]/",
    "postgresql://[::1]",
    "postgres://",
    "postgres:///",
    "postgres:///db",
    "postgres://uri-user@/db",
    "postgres://?host=/path/to/socket/dir",
    "postgresql://host?uzer=",
    "postgre://",
    "postgres://[::1",
    "postgres://[]",
    "postgres://[::1]z",
    "postgresql://host?zzz",
    "postgresql://host?value1&value2",
    "postgresql://host?key=key=value",
    "postgres://host?dbname=%XXfoo",
    "postgresql://a%00b",
    "postgresql://%zz",
    "postgresql://%1",
    "postgresql://%",
    "postgres://@host",
    "postgres://host:/",
    "postgres://:12345/",
    "postgres://otheruser@?host=/no/such/directory",
    "postgres://otheruser@/?host=/no/such/directory",
    "postgres://otheruser@:12345?host=/no/such/socket/path",
    "postgres://otheruser@:12345/db?host=/path/to/socket",
    "postgres://:12345/db?host=/path/to/socket",
    "postgres://:12345?host=/path/to/socket",
    "postgres://%2Fvar%2Flib%2Fpostgresql/dbname",
]
for i, uri in enumerate(URIS):
    case("uri%02d %s" % (i + 1, uri), uri, listeners=URI_LISTENERS, source=URI_SRC)
for mode in ("disable", "prefer", "verify-full"):
    case("uri-sslrootcert-system %s" % mode, "postgresql://host?sslmode=" + mode,
         env={"PGSSLROOTCERT": "system"},
         listeners={"host:5432": TLS}, source=URI_SRC)

# ---------------------------------------------------------------------------------------------
# (a) src/interfaces/libpq/t/003_load_balance_host_list.pl
# ---------------------------------------------------------------------------------------------
LB_SRC = "postgres/postgres src/interfaces/libpq/t/003_load_balance_host_list.pl"
LB = "host=h1,h2,h3 port=5432,5433,5434"
LB_ALL = {"h1:5432": T, "h2:5433": T, "h3:5434": T}
case("lb unknown value", LB + " load_balance_hosts=doesnotexist", listeners=LB_ALL, source=LB_SRC)
case("lb disable first node", LB + " load_balance_hosts=disable", listeners=LB_ALL, source=LB_SRC)
case("lb disable continues to working node", LB + " load_balance_hosts=disable",
     listeners={"h3:5434": T}, source=LB_SRC)
case("lb random continues to working node", LB + " load_balance_hosts=random",
     listeners={"h3:5434": T}, source=LB_SRC)
case("lb random all starting up", LB + " load_balance_hosts=random",
     listeners={"h1:5432": STARTING, "h2:5433": STARTING, "h3:5434": STARTING},
     source=LB_SRC, unordered=True)
case("lb PGLOADBALANCEHOSTS=random one host", "host=h1", env={"PGLOADBALANCEHOSTS": "random"})
case("lb PGLOADBALANCEHOSTS=disable", LB, env={"PGLOADBALANCEHOSTS": "disable"}, listeners=LB_ALL)
case("lb PGLOADBALANCEHOSTS bogus", LB, env={"PGLOADBALANCEHOSTS": "sometimes"}, listeners=LB_ALL)

# ---------------------------------------------------------------------------------------------
# (a) src/interfaces/libpq/t/005_negotiate_encryption.pl (no Kerberos)
# ---------------------------------------------------------------------------------------------
ENC_SRC = "postgres/postgres src/interfaces/libpq/t/005_negotiate_encryption.pl"
ENC = ("host=enc-test-localhost.postgresql.example.com hostaddr=127.0.0.1 dbname=postgres "
       "application_name=005_negotiate_encryption.pl")
USERS = {"testuser": {}, "ssluser": {"reject_plain": "28000"}, "nossluser": {"reject_tls": "28000"}}
for server_ssl in (False, True):
    for user, beh in USERS.items():
        if not server_ssl and user != "testuser":
            continue
        for gss in ("disable", "prefer"):
            if server_ssl and gss == "prefer" and user != "testuser":
                continue
            for sslmode in ("disable", "allow", "prefer", "require"):
                for neg in ("postgres", "direct"):
                    case("enc ssl=%s %s gss=%s %s %s" % ("on" if server_ssl else "off", user, gss,
                                                       sslmode, neg),
                         "%s user=%s gssencmode=%s sslmode=%s sslnegotiation=%s" % (
                             ENC, user, gss, sslmode, neg),
                         listeners={"127.0.0.1:5432": dict(beh, tls=server_ssl)}, source=ENC_SRC)
for sslmode in ("prefer", "require"):
    case("enc gssencmode=require %s" % sslmode, ENC + " user=testuser gssencmode=require sslmode="
         + sslmode, listeners={"127.0.0.1:5432": TLS}, source=ENC_SRC)
# injection points: an error from the backend before (or right after) the TLS handshake
case("enc backend error before startup, prefer", ENC + " user=testuser sslmode=prefer",
     listeners={"127.0.0.1:5432": {"tls": True, "error": "XX000"}}, source=ENC_SRC)
case("enc backend error after sslaccept, prefer retries plain", ENC + " user=testuser sslmode=prefer",
     listeners={"127.0.0.1:5432": {"tls": True, "reject_tls": "XX000"}}, source=ENC_SRC)

# ---------------------------------------------------------------------------------------------
# (a) src/interfaces/libpq/t/006_service.pl
# ---------------------------------------------------------------------------------------------
SVC_SRC = "postgres/postgres src/interfaces/libpq/t/006_service.pl"
VALID = "[my_srv]\nhost=h1\nport=5433\nuser=svcuser\ndbname=svcdb\n"
SVC_FILES = {"{tmp}/pg_service_valid.conf": VALID, "{tmp}/pg_service_empty.conf": ""}
SVC_ENV = {"PGSYSCONFDIR": "{tmp}/sysconf", "PGSERVICEFILE": "{tmp}/pg_service_valid.conf"}
SVC_L = {"h1:5433": T}
case("svc006 service string", "service=my_srv", env=SVC_ENV, files=SVC_FILES, listeners=SVC_L,
     source=SVC_SRC)
case("svc006 service URI", "postgres://?service=my_srv", env=SVC_ENV, files=SVC_FILES,
     listeners=SVC_L, source=SVC_SRC)
case("svc006 undefined service", "service=undefined-service", env=SVC_ENV, files=SVC_FILES,
     listeners=SVC_L, source=SVC_SRC)
case("svc006 PGSERVICE", None, env=dict(SVC_ENV, PGSERVICE="my_srv"), files=SVC_FILES,
     listeners=SVC_L, source=SVC_SRC)
case("svc006 PGSERVICE undefined", None, env=dict(SVC_ENV, PGSERVICE="undefined-service"),
     files=SVC_FILES, listeners=SVC_L, source=SVC_SRC)
case("svc006 PGSERVICEFILE missing", "service=my_srv",
     env=dict(SVC_ENV, PGSERVICEFILE="{tmp}/pg_service_missing.conf"), files=SVC_FILES,
     listeners=SVC_L, source=SVC_SRC)
SYS_FILES = dict(SVC_FILES, **{"{tmp}/sysconf/pg_service.conf": VALID})
SYS_ENV = {"PGSYSCONFDIR": "{tmp}/sysconf", "PGSERVICEFILE": "{tmp}/pg_service_empty.conf"}
case("svc006 sysconfdir service string", "service=my_srv", env=SYS_ENV, files=SYS_FILES,
     listeners=SVC_L, source=SVC_SRC)
case("svc006 sysconfdir service URI", "postgres://?service=my_srv", env=SYS_ENV, files=SYS_FILES,
     listeners=SVC_L, source=SVC_SRC)
case("svc006 sysconfdir undefined", "service=undefined-service", env=SYS_ENV, files=SYS_FILES,
     listeners=SVC_L, source=SVC_SRC)
case("svc006 sysconfdir PGSERVICE", None, env=dict(SYS_ENV, PGSERVICE="my_srv"), files=SYS_FILES,
     listeners=SVC_L, source=SVC_SRC)
case("svc006 sysconfdir PGSERVICE undefined", None,
     env=dict(SYS_ENV, PGSERVICE="undefined-service"), files=SYS_FILES, listeners=SVC_L,
     source=SVC_SRC)
case("svc006 servicefile keyword", "service=my_srv servicefile={tmp}/pg_service_valid.conf",
     env=SYS_ENV, files=SVC_FILES, listeners=SVC_L, source=SVC_SRC)
case("svc006 servicefile URI parameter",
     "postgresql:///?service=my_srv&servicefile={tmp}/pg_service_valid.conf", env=SYS_ENV, files=SVC_FILES,
     listeners=SVC_L, source=SVC_SRC)

# ---------------------------------------------------------------------------------------------
# (a) src/test/ssl/t/001_ssltests.pl: sslmode and certificates (simplified to this CA)
# ---------------------------------------------------------------------------------------------
SSL_SRC = "postgres/postgres src/test/ssl/t/001_ssltests.pl"
H1_TLS = {"h1:5432": TLS}
for mode in ("require", "verify-ca", "verify-full"):
    case("ssl %s with CA" % mode, "host=h1 sslmode=%s %s" % (mode, CA), listeners=H1_TLS,
         source=SSL_SRC)
    case("ssl %s with other CA" % mode, "host=h1 sslmode=%s sslrootcert={certs}/other-ca.crt" % mode,
         listeners=H1_TLS, source=SSL_SRC)
    case("ssl %s server without TLS" % mode, "host=h1 sslmode=%s %s" % (mode, CA), source=SSL_SRC)
case("ssl verify-ca without root.crt", "host=h1 sslmode=verify-ca", listeners=H1_TLS,
     source=SSL_SRC)
case("ssl verify-full missing sslrootcert file", "host=h1 sslmode=verify-full sslrootcert={tmp}/nope.crt",
     listeners=H1_TLS, source=SSL_SRC)
case("ssl verify-full wrong host name", "host=other sslmode=verify-full " + CA,
     listeners={"other:5432": TLS}, source=SSL_SRC)
case("ssl verify-full IP in SAN", "host=127.0.0.2 sslmode=verify-full " + CA,
     listeners={"127.0.0.2:5432": TLS}, source=SSL_SRC)
case("ssl verify-full hostaddr checks host name", "host=h1 hostaddr=127.0.0.8 sslmode=verify-full " + CA,
     listeners={"127.0.0.8:5432": TLS}, source=SSL_SRC)
case("ssl verify-full hostaddr only", "hostaddr=127.0.0.2 sslmode=verify-full " + CA,
     listeners={"127.0.0.2:5432": TLS}, source=SSL_SRC)
case("ssl require verifies with ~/.postgresql/root.crt", "host=h1 sslmode=require",
     files={".postgresql/root.crt": "@certs/other-ca.crt"}, listeners=H1_TLS, source=SSL_SRC)
case("ssl require with good ~/.postgresql/root.crt", "host=h1 sslmode=require",
     files={".postgresql/root.crt": "@certs/ca.crt"}, listeners=H1_TLS, source=SSL_SRC)
case("ssl prefer with bad root.crt", "host=h1 sslmode=prefer",
     files={".postgresql/root.crt": "@certs/other-ca.crt"}, listeners=H1_TLS, source=SSL_SRC)
case("ssl sslsni=0", "host=h1 sslmode=require sslsni=0", listeners=H1_TLS, source=SSL_SRC)
case("ssl PGSSLSNI=0", "host=h1 sslmode=require", env={"PGSSLSNI": "0"}, listeners=H1_TLS,
     source=SSL_SRC)
case("ssl no SNI for an IP", "host=127.0.0.2 sslmode=require", listeners={"127.0.0.2:5432": TLS},
     source=SSL_SRC)
case("ssl disable", "host=h1 sslmode=disable", listeners=H1_TLS, source=SSL_SRC)
case("ssl requiressl=1", "host=h1 requiressl=1", listeners=H1_TLS, source=SSL_SRC)
case("ssl PGREQUIRESSL=1 plain server", "host=h1", env={"PGREQUIRESSL": "1"}, source=SSL_SRC)
case("ssl bogus sslmode", "host=h1 sslmode=sometimes", source=SSL_SRC)
case("ssl client cert presented", "host=h1 sslmode=require sslcert={certs}/client.crt "
     "sslkey={tmp}/client.key", files={"{tmp}/client.key": "@certs/client.key"},
     listeners={"h1:5432": {"tls": True, "client_cert": True}}, source=SSL_SRC)
case("ssl client cert from ~/.postgresql", "host=h1 sslmode=require",
     files={".postgresql/postgresql.crt": "@certs/client.crt",
            ".postgresql/postgresql.key": "@certs/client.key"},
     listeners={"h1:5432": {"tls": True, "client_cert": True}}, source=SSL_SRC)
case("ssl client key group readable", "host=h1 sslmode=require sslcert={certs}/client.crt "
     "sslkey={tmp}/client.key", files={"{tmp}/client.key": ("@certs/client.key", 0o644)},
     listeners={"h1:5432": {"tls": True, "client_cert": True}}, source=SSL_SRC)
case("ssl sslcert without key", "host=h1 sslmode=require sslcert={certs}/client.crt "
     "sslkey={tmp}/missing.key", listeners={"h1:5432": {"tls": True, "client_cert": True}},
     source=SSL_SRC)
case("ssl max protocol TLSv1.2", "host=h1 sslmode=require ssl_max_protocol_version=TLSv1.2",
     listeners=H1_TLS, source=SSL_SRC)
case("ssl min > max protocol", "host=h1 sslmode=require ssl_min_protocol_version=TLSv1.3 "
     "ssl_max_protocol_version=TLSv1.2", listeners=H1_TLS, source=SSL_SRC)
case("ssl bogus min protocol", "host=h1 sslmode=require ssl_min_protocol_version=TLSv9",
     listeners=H1_TLS, source=SSL_SRC)
case("ssl unix socket never TLS", "host=/var/run/postgresql sslmode=require",
     listeners={SOCK: TLS}, source=SSL_SRC)
case("ssl sslcrl missing file", "host=h1 sslmode=verify-full %s sslcrl={tmp}/none.crl" % CA,
     listeners=H1_TLS, source=SSL_SRC)

# ---------------------------------------------------------------------------------------------
# (b) own: empty values count as set
# ---------------------------------------------------------------------------------------------
case("empty user='' blocks PGUSER", "host=h1 user=''", env={"PGUSER": "alice"})
case("empty PGUSER= is the OS user", "host=h1", env={"PGUSER": ""})
case("empty -U '' falls back to PGUSER", "host=h1", flags=["-U", ""], env={"PGUSER": "alice"})
case("empty host='' is the default socket", "host='' user=bob", env={"PGHOST": "h1"},
     listeners={SOCK: T, "h1:5432": T})
case("empty PGHOST= is the default socket", None, env={"PGHOST": "", "PGUSER": "bob"},
     listeners={SOCK: T, "h1:5432": T})
case("empty host list entry a,,b", "host=h1,,h2 user=bob",
     listeners={SOCK: STARTING, "h2:5432": T})
case("empty host list entry first", "host=,h2 user=bob", listeners={SOCK: STARTING, "h2:5432": T})
case("empty dbname='' is the user", "host=h1 user=bob dbname=''", env={"PGDATABASE": "other"})
case("empty PGDATABASE= is the user", "host=h1 user=bob", env={"PGDATABASE": ""})
case("empty dbname='' pgpass uses defaulted dbname", "host=h1 user=bob dbname=''",
     files={".pgpass": "h1:5432:bob:bob:pw-for-bob-db\n*:*:*:bob:wildcard\n"}, listeners={"h1:5432": PW})
case("empty PGSSLMODE= is an error", "host=h1", env={"PGSSLMODE": ""})
case("empty sslmode='' is an error", "host=h1 sslmode=''")
case("empty password='' sends none", "host=h1 user=bob password=''", env={"PGPASSWORD": "envpw"},
     listeners={"h1:5432": PW})
case("empty PGPASSWORD= sends none", "host=h1 user=bob", env={"PGPASSWORD": ""},
     listeners={"h1:5432": PW})
case("empty port='' is 5432", "host=h1 port=''", env={"PGPORT": "5433"},
     listeners={"h1:5432": T, "h1:5433": T})
case("empty PGPORT= is 5432", "host=h1", env={"PGPORT": ""}, listeners={"h1:5432": T, "h1:5433": T})
case("empty application_name='' blocks PGAPPNAME", "host=h1 application_name=''",
     env={"PGAPPNAME": "envapp"})
case("empty PGAPPNAME=", "host=h1", env={"PGAPPNAME": ""})
case("empty options='' blocks PGOPTIONS", "host=h1 options=''", env={"PGOPTIONS": "-c geqo=off"})
case("empty -h '' keeps PGHOST", None, flags=["-h", ""], env={"PGHOST": "h2"},
     listeners={"h2:5432": T, SOCK: T})
case("empty hostaddr=''", "host=h1 hostaddr=''")
case("empty PGCONNECT_TIMEOUT=", "host=h1", env={"PGCONNECT_TIMEOUT": ""})
case("empty target_session_attrs=''", "host=h1 target_session_attrs=''")

# ---------------------------------------------------------------------------------------------
# (b) own: URIs
# ---------------------------------------------------------------------------------------------
case("uri userinfo ends at first @", "postgresql://user:p@ss@h1/db", listeners={"h1:5432": PW})
case("uri ? in userinfo", "postgresql://user:pa?ss@h1/db", listeners={"h1:5432": PW})
case("uri # in password", "postgresql://user:pa#ss@h1/db", listeners={"h1:5432": PW})
case("uri / in password", "postgresql://user:pa/ss@h1/db", listeners={"h1:5432": PW})
case("uri percent-encoded userinfo", "postgresql://b%40b:p%3Aw%40@h1/db", listeners={"h1:5432": PW})
case("uri user only with colon", "postgresql://bob:@h1/db", listeners={"h1:5432": PW})
case("uri scheme upper case", "POSTGRESQL://h1/db")
case("uri scheme mixed case", "Postgres://h1/db")
case("uri sqlalchemy scheme", "postgresql+psycopg2://bob@h1/db")
case("uri jdbc scheme", "jdbc:postgresql://h1/db")
case("uri empty ipv6", "postgres://[]")
case("uri %00 in dbname", "postgresql://h1/a%00b")
case("uri %00 in password", "postgresql://bob:a%00b@h1/db", listeners={"h1:5432": PW})
case("uri %FF raw byte in dbname", "postgresql://h1/%FF%FE")
case("uri %C3%A9 utf8 dbname", "postgresql://h1/caf%C3%A9")
case("uri %2C in host splits", "postgresql://h1%2Ch2/db", listeners={"h1:5432": STARTING, "h2:5432": T})
case("uri %2F host is a socket dir", "postgresql://%2Fvar%2Frun%2Fpostgresql/db", listeners={SOCK: T})
case("uri query without = is an error", "postgresql://h1/db?user")
case("uri query &user=x", "postgresql://h1/db?&user=x")
case("uri query trailing &", "postgresql://h1/db?user=x&")
case("uri options raw second =", "postgresql://h1/db?options=-c%20a=b")
case("uri options encoded", "postgresql://h1/db?options=-c%20search_path%3Dx")
case("uri options plus sign", "postgresql://h1/db?options=-c+geqo=off")
case("uri ssl=true", "postgresql://h1/db?ssl=true", listeners=H1_TLS)
case("uri ssl=true plain server", "postgresql://h1/db?ssl=true")
case("uri ssl=false", "postgresql://h1/db?ssl=false", listeners=H1_TLS)
case("uri unknown parameter", "postgresql://h1/db?foo=bar")
case("uri unknown parameter encoded", "postgresql://h1/db?%66oo=bar")
case("uri multi host ports", "postgresql://h1:5433,h2:5434/db",
     listeners={"h1:5433": STARTING, "h2:5434": T})
case("uri multi host port in query", "postgresql://h1,h2/db?port=5433",
     listeners={"h1:5433": STARTING, "h2:5433": T})
case("uri multi host one port each in query", "postgresql://h1,h2/db?port=5433,5434",
     listeners={"h1:5433": STARTING, "h2:5434": T})
case("uri host query overrides authority", "postgresql://h1/db?host=h2", listeners={"h1:5432": T, "h2:5432": T})
case("uri user query overrides userinfo", "postgresql://bob@h1/db?user=alice")
case("uri dbname query overrides path", "postgresql://h1/one?dbname=two")
case("uri ipv6 with port", "postgresql://bob@[::1]:5433/db", listeners={"[::1]:5433": T})
case("uri ipv6 and ipv4 list", "postgresql://[::1]:5433,127.0.0.2:5434/db",
     listeners={"[::1]:5433": STARTING, "127.0.0.2:5434": T})
case("uri application_name", "postgresql://h1/db?application_name=my%20app")
case("uri fallback_application_name", "postgresql://h1/db?fallback_application_name=fb")
case("uri both application names", "postgresql://h1/db?fallback_application_name=fb&application_name=an")
case("uri non-numeric port", "postgresql://h1:abc/db")
case("uri port 0", "postgresql://h1:0/db")
case("uri path with slash in dbname", "postgresql://h1/a/b")
case("uri dbname percent slash", "postgresql://h1/a%2Fb")
case("uri empty port list entry", "postgresql://h1:5432,h2:/db", listeners={"h1:5432": STARTING, "h2:5432": T})
case("uri sslmode param", "postgresql://h1/db?sslmode=require&sslrootcert={certs}/ca.crt",
     listeners=H1_TLS)
case("uri hostaddr list", "postgresql://h1,h2/db?hostaddr=127.0.0.2,127.0.0.3",
     listeners={"127.0.0.2:5432": STARTING, "127.0.0.3:5432": T})
case("uri trailing garbage after ipv6", "postgresql://[::1]x/db")
case("uri with fragment", "postgresql://h1/db#frag")
case("uri space in host", "postgresql://h%201/db")
case("uri dbname with spaces", "postgresql://h1/my%20db")
case("uri keyword value app name with ://", "host=h1 application_name='svc://x'")
case("uri keyword value dbname is a URI", "host=h1 dbname='postgresql://h2/x'",
     listeners={"h1:5432": T, "h2:5432": T})
case("uri as PGDATABASE is a name", None, env={"PGDATABASE": "postgresql://h2/x", "PGHOST": "h1"},
     listeners={"h1:5432": T, "h2:5432": T})
case("uri given to -h", None, flags=["-h", "postgresql://h2/x"], listeners={"h1:5432": T, "h2:5432": T})

# ---------------------------------------------------------------------------------------------
# (b) own: sslmode fallbacks
# ---------------------------------------------------------------------------------------------
for code in ("28000", "53300", "57P03", "XX000", "3D000", "28P01"):
    case("prefer retries plain after TLS error %s" % code, "host=h1 user=bob sslmode=prefer",
         listeners={"h1:5432": {"tls": True, "reject_tls": code}})
case("prefer retries plain after TLS scram failure", "host=h1 user=bob password=x sslmode=prefer",
     listeners={"h1:5432": {"tls": True, "auth": "scram"}})
case("prefer then next host", "host=h1,h2 user=bob sslmode=prefer",
     listeners={"h1:5432": {"tls": True, "error": "57P03"}, "h2:5432": T})
for code in ("28000", "53300", "57P03", "XX000", "28P01"):
    case("allow retries TLS after plain error %s" % code, "host=h1 user=bob sslmode=allow",
         listeners={"h1:5432": {"tls": True, "reject_plain": code}})
case("allow 57P03 then next host", "host=h1,h2 user=bob sslmode=allow",
     listeners={"h1:5432": {"tls": True, "reject_plain": "57P03"}, "h2:5432": T})
case("allow plain fails, server has no TLS", "host=h1 user=bob sslmode=allow",
     listeners={"h1:5432": {"reject_plain": "28000"}})
case("allow password rejection", "host=h1 user=bob password=bad sslmode=allow",
     listeners={"h1:5432": {"tls": True, "auth": "password", "password": "good"}})
case("prefer password rejection", "host=h1 user=bob password=bad sslmode=prefer",
     listeners={"h1:5432": {"tls": True, "auth": "password", "password": "good"}})
case("require rejection no retry", "host=h1 user=bob sslmode=require",
     listeners={"h1:5432": {"tls": True, "reject_tls": "28000"}})
case("PGSSLMODE=allow", "host=h1", env={"PGSSLMODE": "allow"}, listeners=H1_TLS)
case("PGSSLMODE=verify-full PGSSLROOTCERT", "host=h1",
     env={"PGSSLMODE": "verify-full", "PGSSLROOTCERT": "{certs}/ca.crt"}, listeners=H1_TLS)
case("sslmode conninfo beats PGSSLMODE", "host=h1 sslmode=disable", env={"PGSSLMODE": "require"},
     listeners=H1_TLS)

# ---------------------------------------------------------------------------------------------
# (b) own: multiple hosts
# ---------------------------------------------------------------------------------------------
TWO = "host=h1,h2 user=bob"
case("hosts 57P03 moves on", TWO, listeners={"h1:5432": STARTING, "h2:5432": T})
for code in ("53300", "28000", "3D000", "28P01"):
    beh = {"auth": "password", "password": "good"} if code == "28P01" else {"error": code}
    case("hosts %s ends the attempt" % code, TWO + (" password=bad" if code == "28P01" else ""),
         listeners={"h1:5432": beh, "h2:5432": T})
case("hosts refused moves on", TWO, listeners={"h2:5432": T})
case("hosts unresolvable moves on", "host=nosuch.invalid,h2 user=bob", listeners={"h2:5432": T})
case("hosts non-numeric port reached", "host=h1,h2 port=5432,abc", listeners={"h2:5432": T})
case("hosts non-numeric port not reached", "host=h1,h2 port=5432,abc", listeners={"h1:5432": T})
case("hosts out-of-range port skipped", "host=h1,h2 port=99999,5432", listeners={"h2:5432": T})
case("hosts single out-of-range port", "host=h1 port=99999")
case("hosts negative port", "host=h1 port=-1")
case("hosts port with spaces", "host=h1 port=' 5432'")
case("hosts not trimmed", "host='h1, h2'", listeners={"h1:5432": STARTING, "h2:5432": T})
case("hosts trailing comma", "host='h1,'", listeners={"h1:5432": STARTING, SOCK: T})
case("hosts port list too long", "host=h1,h2 port=5432,5433,5434", listeners={"h1:5432": T})
case("hosts port list too short", "host=h1,h2,h3 port=5432,5433", listeners={"h1:5432": T})
case("hosts one port for all", "host=h1,h2 port=5433", listeners={"h1:5433": STARTING, "h2:5433": T})
case("hosts PGHOST list PGPORT list", None, env={"PGHOST": "h1,h2", "PGPORT": "5433,5434"},
     listeners={"h1:5433": STARTING, "h2:5434": T})
case("hosts hostaddr list", "host=h1,h2 hostaddr=127.0.0.2,127.0.0.3",
     listeners={"127.0.0.2:5432": STARTING, "127.0.0.3:5432": T})
case("hosts hostaddr count mismatch", "host=h1,h2 hostaddr=127.0.0.2", listeners={"127.0.0.2:5432": T})
case("hosts hostaddr invalid", "hostaddr=not-an-ip")
case("hosts hostaddr only", "hostaddr=127.0.0.3", listeners={"127.0.0.3:5432": T})
case("hosts hostaddr ipv6", "hostaddr=::1 port=5433", listeners={"[::1]:5433": T})
case("hosts PGHOSTADDR", "host=h1", env={"PGHOSTADDR": "127.0.0.3"},
     listeners={"h1:5432": T, "127.0.0.3:5432": T})
case("hosts dual-stack name tries both", "host=dual", listeners={"dual:5432": STARTING})
case("hosts dual-stack v4 answers", "host=dual port=5433", listeners={"127.0.0.7:5433": T})
case("hosts socket dir then tcp", "host=/var/run/postgresql,h1",
     listeners={SOCK: STARTING, "h1:5432": T})
case("hosts socket in /tmp", "host=/tmp", listeners={SOCK_TMP: T})
case("hosts socket other port", "host=/var/run/postgresql port=5499",
     listeners={"unix:/var/run/postgresql/.s.PGSQL.5499": T})
case("hosts socket dir in tmp", "host={tmp}/sock port=6000",
     listeners={"unix:{tmp}/sock/.s.PGSQL.6000": T})
case("hosts @-prefixed abstract socket", "host=@abstract", listeners={})
case("hosts all fail", "host=h1,h2,h3", listeners={"h1:5432": STARTING, "h3:5432": STARTING})
case("hosts connect_timeout silent server", "host=h1,h2 connect_timeout=2",
     listeners={"h1:5432": {"silent": True}, "h2:5432": T})
case("hosts connect_timeout invalid", "host=h1 connect_timeout=abc")
case("hosts connect_timeout negative", "host=h1 connect_timeout=-5")
case("hosts PGCONNECT_TIMEOUT invalid", "host=h1", env={"PGCONNECT_TIMEOUT": "soon"})
case("hosts default localhost tcp", "host=localhost port=5433",
     listeners={"127.0.0.1:5433": T})

# ---------------------------------------------------------------------------------------------
# (b) own: target_session_attrs
# ---------------------------------------------------------------------------------------------
STBY = {"primary": False}
for attrs in ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"):
    case("tsa %s primary first" % attrs, "host=h1,h2 target_session_attrs=" + attrs,
         listeners={"h1:5432": T, "h2:5432": STBY})
    case("tsa %s standby first" % attrs, "host=h1,h2 target_session_attrs=" + attrs,
         listeners={"h1:5432": STBY, "h2:5432": T})
case("tsa standby none available", "host=h1,h2 target_session_attrs=standby",
     listeners={"h1:5432": T, "h2:5432": T})
case("tsa prefer-standby none available", "host=h1,h2 target_session_attrs=prefer-standby",
     listeners={"h1:5432": T, "h2:5432": T})
case("tsa read-write none available", "host=h1,h2 target_session_attrs=read-write",
     listeners={"h1:5432": STBY, "h2:5432": STBY})
case("PGTARGETSESSIONATTRS=read-write", "host=h1,h2", env={"PGTARGETSESSIONATTRS": "read-write"},
     listeners={"h1:5432": STBY, "h2:5432": T})
case("tsa bogus", "host=h1 target_session_attrs=master")
case("tsa over socket", "host=/var/run/postgresql,h1 target_session_attrs=primary",
     listeners={SOCK: STBY, "h1:5432": T})

# ---------------------------------------------------------------------------------------------
# (b) own: service files
# ---------------------------------------------------------------------------------------------
SVC = {".pg_service.conf": "[svc]\nhost=h1\nuser=svcuser\ndbname=svcdb\n"}
case("svc basic", "service=svc", files=SVC)
case("svc PGSERVICE", None, env={"PGSERVICE": "svc"}, files=SVC)
case("svc missing PGSERVICEFILE", "service=svc", env={"PGSERVICEFILE": "{tmp}/none.conf"}, files=SVC)
case("svc PGSERVICEFILE", "service=svc", env={"PGSERVICEFILE": "{tmp}/s.conf"},
     files={"{tmp}/s.conf": "[svc]\nhost=h2\n"}, listeners={"h2:5432": T})
case("svc spaces around =", "service=svc", files={".pg_service.conf": "[svc]\nhost = h1\nuser = bob\n"})
case("svc space before =", "service=svc", files={".pg_service.conf": "[svc]\nhost =h1\n"})
case("svc space after =", "service=svc", files={".pg_service.conf": "[svc]\nuser= bob\nhost=h1\n"})
case("svc trailing space in value", "service=svc", files={".pg_service.conf": "[svc]\nhost=h1\nuser=bob  \n"})
case("svc leading space in line", "service=svc", files={".pg_service.conf": "[svc]\n  host=h1\n  user=bob\n"})
case("svc text after ]", "service=svc", files={".pg_service.conf": "[svc] trailing words\nhost=h1\nuser=bob\n"})
case("svc malformed header in another section", "service=svc",
     files={".pg_service.conf": "[other\nhost=h2\n[svc]\nhost=h1\nuser=bob\n"})
case("svc malformed line in another section", "service=svc",
     files={".pg_service.conf": "[other]\nthis is not a setting\n[svc]\nhost=h1\nuser=bob\n"})
case("svc malformed line in the section", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\nnonsense\n"})
case("svc unknown keyword in the section", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\nfrobnicate=1\n"})
case("svc unknown keyword in another section", "service=svc",
     files={".pg_service.conf": "[other]\nfrobnicate=1\n[svc]\nhost=h1\n"})
case("svc nested service keyword", "service=svc",
     files={".pg_service.conf": "[svc]\nservice=other\nhost=h1\n[other]\nuser=bob\n"})
case("svc comments and blank lines", "service=svc",
     files={".pg_service.conf": "# comment\n\n[svc]\n# inside\nhost=h1\n\nuser=bob\n"})
case("svc value with quotes is raw", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\nuser='bob'\n"})
case("svc value with spaces", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\noptions=-c geqo=off -c jit=off\n"})
case("svc beats PG variables", "service=svc", env={"PGUSER": "envuser", "PGDATABASE": "envdb"}, files=SVC)
case("svc PGHOST loses to service", "service=svc", env={"PGHOST": "h2"}, files=SVC,
     listeners={"h1:5432": T, "h2:5432": T})
case("svc conninfo beats service", "service=svc user=carol", files=SVC)
case("svc flags beat service", "service=svc", flags=["-U", "dave"], files=SVC)
case("svc URI beats service", "postgresql://erin@/?service=svc", files=SVC,
     listeners={"h1:5432": T, SOCK: T})
case("svc servicefile keyword", "service=svc servicefile={tmp}/s.conf",
     files={"{tmp}/s.conf": "[svc]\nhost=h2\n"}, listeners={"h2:5432": T, SOCK: T})
case("svc user file wins over sysconf", "service=svc", env={"PGSYSCONFDIR": "{tmp}/sys"},
     files={".pg_service.conf": "[svc]\nhost=h1\n", "{tmp}/sys/pg_service.conf": "[svc]\nhost=h2\nuser=sysuser\n"},
     listeners={"h1:5432": T, "h2:5432": T})
case("svc falls back to sysconf", "service=svc", env={"PGSYSCONFDIR": "{tmp}/sys"},
     files={".pg_service.conf": "[x]\nhost=h1\n", "{tmp}/sys/pg_service.conf": "[svc]\nhost=h2\n"},
     listeners={"h1:5432": T, "h2:5432": T})
case("svc not found anywhere", "service=nosuch", env={"PGSYSCONFDIR": "{tmp}/sys"}, files=SVC)
case("svc first definition wins", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\nuser=first\n[svc]\nuser=second\n"})
case("svc repeated key in a section", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\nuser=first\nuser=second\n"})
case("svc section names are case sensitive", "service=SVC", files=SVC)
case("svc password and sslmode", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\nuser=bob\npassword=svcpw\nsslmode=require\n"},
     listeners={"h1:5432": TLS_PW})
case("svc host list", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1,h2\nport=5433,5434\n"},
     listeners={"h1:5433": STARTING, "h2:5434": T})
case("svc empty value", "service=svc",
     files={".pg_service.conf": "[svc]\nhost=h1\nuser=\n"}, env={"PGUSER": "envuser"})
case("svc crlf line endings", "service=svc",
     files={".pg_service.conf": "[svc]\r\nhost=h1\r\nuser=bob\r\n"})
case("svc ldap url line", "service=svc",
     files={".pg_service.conf": "[svc]\nldap://ldap.invalid/dc=x?uniqueMember?one?(cn=x)\nhost=h1\n"})

# ---------------------------------------------------------------------------------------------
# (b) own: .pgpass
# ---------------------------------------------------------------------------------------------
PWL = {"h1:5432": PW}
def pgpass(name, content, dsn="host=h1 user=bob dbname=db", mode=0o600, env=None, listeners=PWL,
           flags=()):
    case("pgpass " + name, dsn, files={".pgpass": (content, mode)}, env=env, listeners=listeners,
         flags=flags)
pgpass("basic", "h1:5432:db:bob:secret\n")
pgpass("unescaped colon ends field", "h1:5432:db:bob:a:b\n")
pgpass("escaped colon", "h1:5432:db:bob:a\\:b\n")
pgpass("escaped backslash", "h1:5432:db:bob:a\\\\b\n")
pgpass("escaped star is literal", "\\*:5432:db:bob:literal\n*:5432:db:bob:wild\n")
pgpass("star inside field not a wildcard", "h*:5432:db:bob:partial\n*:*:*:*:fallback\n")
pgpass("whole-field wildcards", "*:*:*:*:wild\n")
pgpass("four fields never match", "h1:5432:db:bob\n*:*:*:bob:five\n")
pgpass("first match wins", "h1:*:*:bob:first\nh1:5432:db:bob:second\n")
pgpass("comment lines", "# h1:5432:db:bob:commented\nh1:5432:db:bob:real\n")
pgpass("port must match", "h1:5433:db:bob:wrongport\n*:*:*:*:fallback\n")
pgpass("user must match", "h1:5432:db:alice:alice\n*:*:*:*:fallback\n")
pgpass("dbname defaults to user", "h1:5432:bob:bob:dbisuser\n", dsn="host=h1 user=bob")
pgpass("dbname from PGDATABASE", "h1:5432:envdb:bob:envdbpw\n", dsn="host=h1 user=bob",
       env={"PGDATABASE": "envdb"})
pgpass("group readable is ignored", "h1:5432:db:bob:secret\n", mode=0o640)
pgpass("password in conninfo wins", "h1:5432:db:bob:frompgpass\n", dsn="host=h1 user=bob dbname=db password=conn")
pgpass("PGPASSWORD wins", "h1:5432:db:bob:frompgpass\n", env={"PGPASSWORD": "envpw"})
pgpass("empty password field", "h1:5432:db:bob:\n*:*:*:*:fallback\n")
pgpass("localhost matches the socket", "localhost:5432:db:bob:sockpw\n",
       dsn="host=/var/run/postgresql user=bob dbname=db", listeners={SOCK: PW})
pgpass("socket dir name does not match", "/var/run/postgresql:5432:db:bob:dirpw\n*:*:*:*:fallback\n",
       dsn="host=/var/run/postgresql user=bob dbname=db", listeners={SOCK: PW})
pgpass("hostaddr matches host name", "h1:5432:db:bob:byname\n127.0.0.2:5432:db:bob:byaddr\n",
       dsn="host=h1 hostaddr=127.0.0.2 user=bob dbname=db", listeners={"127.0.0.2:5432": PW})
pgpass("hostaddr only matches the address", "127.0.0.2:5432:db:bob:byaddr\n*:*:*:*:fallback\n",
       dsn="hostaddr=127.0.0.2 user=bob dbname=db", listeners={"127.0.0.2:5432": PW})
pgpass("per host in a list", "h1:5432:db:bob:pw1\nh2:5432:db:bob:pw2\n",
       dsn="host=h1,h2 user=bob dbname=db",
       listeners={"h1:5432": {"auth": "password", "error": "57P03"}, "h2:5432": PW})
pgpass("md5 server", "h1:5432:db:bob:md5pw\n", listeners={"h1:5432": MD5})
pgpass("crlf line", "h1:5432:db:bob:crlf\r\n")
pgpass("trailing backslash", "h1:5432:db:bob:end\\\n")
pgpass("default port when unset", "h1:5432:db:bob:default\n", dsn="host=h1 user=bob dbname=db")
pgpass("port from flag", "h1:5433:db:bob:p5433\n", dsn="host=h1 user=bob dbname=db",
       flags=["-p", "5433"], listeners={"h1:5433": PW})
pgpass("uri user", "h1:5432:db:bob:uri\n", dsn="postgresql://bob@h1/db")
pgpass("non-ascii password", "h1:5432:db:bob:p\u00e4ss\n")
case("pgpass PGPASSFILE", "host=h1 user=bob dbname=db", env={"PGPASSFILE": "{tmp}/pw"},
     files={"{tmp}/pw": "h1:5432:db:bob:frompassfile\n", ".pgpass": "*:*:*:*:home\n"}, listeners=PWL)
case("pgpass passfile keyword", "host=h1 user=bob dbname=db passfile={tmp}/pw",
     files={"{tmp}/pw": "h1:5432:db:bob:kw\n"}, listeners=PWL)
case("pgpass PGPASSFILE missing", "host=h1 user=bob dbname=db", env={"PGPASSFILE": "{tmp}/none"},
     files={".pgpass": "*:*:*:*:home\n"}, listeners=PWL)
case("pgpass PGPASSFILE is a directory", "host=h1 user=bob dbname=db", env={"PGPASSFILE": "{tmp}"},
     listeners=PWL)

# ---------------------------------------------------------------------------------------------
# (b) own: psql-style flags and -d
# ---------------------------------------------------------------------------------------------
BOTH = {"h1:5432": T, "h2:5432": T}
case("flags -h loses to -d host", "host=h1", flags=["-h", "h2"], listeners=BOTH)
case("flags -h loses to -d URI host", "postgresql://h1/db", flags=["-h", "h2"], listeners=BOTH)
case("flags -U loses to -d user", "host=h1 user=alice", flags=["-U", "bob"])
case("flags -p used when -d has no port", "host=h1", flags=["-p", "5433"], listeners={"h1:5433": T})
case("flags -p loses to -d port", "host=h1 port=5432", flags=["-p", "5433"],
     listeners={"h1:5432": T, "h1:5433": T})
case("flags -d plain name", "mydb", flags=["-h", "h1", "-U", "bob"])
case("flags -d plain name with PGHOST", "mydb", env={"PGHOST": "h1"})
case("flags -h beats PGHOST", None, flags=["-h", "h2"], env={"PGHOST": "h1"}, listeners=BOTH)
case("flags -U beats PGUSER", None, flags=["-h", "h1", "-U", "bob"], env={"PGUSER": "alice"})
case("flags -h list", None, flags=["-h", "h1,h2", "-p", "5433,5434"],
     listeners={"h1:5433": STARTING, "h2:5434": T})
case("flags -d with = but not conninfo", "a=b", flags=["-h", "h1"])
case("flags -d empty string", "", flags=["-h", "h1"])
case("flags no -d at all", None, flags=["-h", "h1"])
case("flags -d conninfo without host uses -h", "user=bob dbname=db", flags=["-h", "h1"])
case("flags -h socket dir", None, flags=["-h", "/var/run/postgresql"], listeners={SOCK: T})

# ---------------------------------------------------------------------------------------------
# (b) own: newer keywords and their variables
# ---------------------------------------------------------------------------------------------
for v in ("password", "md5", "scram-sha-256", "none", "!password", "!md5", "!none",
          "password,md5", "!password,!md5", "bogus", "password,!md5"):
    for server, beh in (("password", PW), ("md5", MD5), ("scram", SCRAM), ("trust", T)):
        case("require_auth=%s %s server" % (v, server),
             "host=h1 user=bob password=pw require_auth=%s" % v, listeners={"h1:5432": beh})
case("PGREQUIREAUTH=md5 password server", "host=h1 user=bob password=pw",
     env={"PGREQUIREAUTH": "md5"}, listeners={"h1:5432": PW})
case("PGREQUIREAUTH=password", "host=h1 user=bob password=pw",
     env={"PGREQUIREAUTH": "password"}, listeners={"h1:5432": PW})

for lo, hi in (("3.0", None), ("3.2", None), ("latest", None), (None, "3.0"), (None, "3.2"),
               (None, "latest"), ("3.2", "3.0"), ("3.1", None), ("2.0", None), ("bogus", None),
               ("3.0", "3.2")):
    parts = ["host=h1"]
    if lo:
        parts.append("min_protocol_version=" + lo)
    if hi:
        parts.append("max_protocol_version=" + hi)
    case("protocol min=%s max=%s" % (lo, hi), " ".join(parts))
case("protocol min=3.2 server negotiates 3.0", "host=h1 min_protocol_version=3.2",
     listeners={"h1:5432": {"proto30": True}})
case("protocol max=latest server negotiates 3.0", "host=h1 max_protocol_version=latest",
     listeners={"h1:5432": {"proto30": True}})
case("PGMINPROTOCOLVERSION=3.2", "host=h1", env={"PGMINPROTOCOLVERSION": "3.2"})
case("PGMAXPROTOCOLVERSION=3.2", "host=h1", env={"PGMAXPROTOCOLVERSION": "3.2"})
case("PGMAXPROTOCOLVERSION bogus", "host=h1", env={"PGMAXPROTOCOLVERSION": "4"})

CC = {"h1:5432": {"tls": True, "client_cert": True}}
CLIENT_FILES = {".postgresql/postgresql.crt": "@certs/client.crt",
                ".postgresql/postgresql.key": "@certs/client.key"}
for mode in ("disable", "allow", "require"):
    case("sslcertmode=%s server asks, client has cert" % mode, "host=h1 sslmode=require sslcertmode=" + mode,
         files=CLIENT_FILES, listeners=CC)
    case("sslcertmode=%s server does not ask" % mode, "host=h1 sslmode=require sslcertmode=" + mode,
         files=CLIENT_FILES, listeners=H1_TLS)
case("sslcertmode bogus", "host=h1 sslmode=require sslcertmode=sometimes", listeners=H1_TLS)
case("PGSSLCERTMODE=disable", "host=h1 sslmode=require", env={"PGSSLCERTMODE": "disable"},
     files=CLIENT_FILES, listeners=CC)
case("sslkeylogfile", "host=h1 sslmode=require sslkeylogfile={tmp}/keys.log", listeners=H1_TLS)
case("sslkeylogfile unwritable", "host=h1 sslmode=require sslkeylogfile=/proc/nope/keys.log",
     listeners=H1_TLS)

case("requirepeer=root socket", "host=/var/run/postgresql requirepeer=root", listeners={SOCK: T})
case("requirepeer=postgres socket", "host=/var/run/postgresql requirepeer=postgres", listeners={SOCK: T})
case("requirepeer tcp ignored", "host=h1 requirepeer=postgres")
case("PGREQUIREPEER=root", "host=/var/run/postgresql", env={"PGREQUIREPEER": "root"}, listeners={SOCK: T})
case("PGREQUIREPEER=nobody", "host=/var/run/postgresql", env={"PGREQUIREPEER": "nobody"},
     listeners={SOCK: T})

for mode in ("require", "verify-full"):
    case("sslnegotiation=direct %s" % mode, "host=h1 sslmode=%s sslnegotiation=direct %s" % (mode, CA),
         listeners=H1_TLS)
case("sslnegotiation=direct server without TLS", "host=h1 sslmode=require sslnegotiation=direct")
case("sslnegotiation=direct prefer", "host=h1 sslmode=prefer sslnegotiation=direct", listeners=H1_TLS)
case("sslnegotiation=direct default sslmode", "host=h1 sslnegotiation=direct", listeners=H1_TLS)
case("sslnegotiation=postgres", "host=h1 sslmode=require sslnegotiation=postgres", listeners=H1_TLS)
case("sslnegotiation bogus", "host=h1 sslmode=require sslnegotiation=maybe", listeners=H1_TLS)
case("PGSSLNEGOTIATION=direct", "host=h1 sslmode=require", env={"PGSSLNEGOTIATION": "direct"},
     listeners=H1_TLS)
case("sslnegotiation=direct hosts list", "host=h1,h2 sslmode=require sslnegotiation=direct",
     listeners={"h1:5432": {"tls": True, "error": "57P03"}, "h2:5432": TLS})

for mode in ("disable", "prefer", "require", "bogus"):
    case("gssencmode=%s" % mode, "host=h1 gssencmode=" + mode)
case("PGGSSENCMODE=prefer", "host=h1", env={"PGGSSENCMODE": "prefer"})
case("PGGSSENCMODE=require", "host=h1", env={"PGGSSENCMODE": "require"})

for cb in ("disable", "prefer", "require"):
    case("channel_binding=%s scram over TLS" % cb, "host=h1 user=bob password=x sslmode=require channel_binding=" + cb,
         listeners={"h1:5432": {"tls": True, "auth": "scram"}})
    case("channel_binding=%s scram plain" % cb, "host=h1 user=bob password=x sslmode=disable channel_binding=" + cb,
         listeners={"h1:5432": SCRAM})
    case("channel_binding=%s password server" % cb, "host=h1 user=bob password=x channel_binding=" + cb,
         listeners={"h1:5432": TLS_PW})
    case("channel_binding=%s trust server" % cb, "host=h1 user=bob channel_binding=" + cb,
         listeners={"h1:5432": TLS})
case("channel_binding bogus", "host=h1 channel_binding=sometimes")
case("PGCHANNELBINDING=require", "host=h1 user=bob password=x", env={"PGCHANNELBINDING": "require"},
     listeners={"h1:5432": TLS_PW})

OA = "host=h1 user=bob password=pw oauth_issuer=https://issuer.invalid oauth_client_id=cid"
case("oauth keywords password server", OA, listeners={"h1:5432": PW})
case("oauth keywords trust server", OA)
case("oauth scope and secret", OA + " oauth_scope=openid oauth_client_secret=s", listeners={"h1:5432": PW})
case("oauth server without issuer", "host=h1 user=bob", listeners={"h1:5432": {"auth": "oauth"}})
case("oauth client_id without issuer", "host=h1 user=bob oauth_client_id=cid")
case("oauth issuer without client_id", "host=h1 user=bob oauth_issuer=https://issuer.invalid")

case("scram_client_key keyword", "host=h1 user=bob scram_client_key=AAAA scram_server_key=AAAA")
case("replication=database", "host=h1 replication=database")
case("replication=true", "host=h1 replication=true")
case("replication bogus", "host=h1 replication=sometimes")
case("options keyword", "host=h1 options='-c search_path=app -c geqo=off'")
case("PGOPTIONS", "host=h1", env={"PGOPTIONS": "-c statement_timeout=5s"})
case("options with escaped space", "host=h1 options='-c search_path=a\\\\ b'")
case("application_name keyword", "host=h1 application_name=myapp")
case("PGAPPNAME", "host=h1", env={"PGAPPNAME": "envapp"})
case("fallback_application_name only", "host=h1 fallback_application_name=fb")
case("application_name beats fallback", "host=h1 fallback_application_name=fb application_name=an")
case("application_name non-ascii", "host=h1 application_name=\u00e9t\u00e9")
case("client_encoding auto", "host=h1 client_encoding=auto")
case("PGCLIENTENCODING", "host=h1", env={"PGCLIENTENCODING": "LATIN1"})
case("keepalives keywords", "host=h1 keepalives=1 keepalives_idle=5 keepalives_interval=1 "
     "keepalives_count=3 tcp_user_timeout=1000")
case("keepalives invalid", "host=h1 keepalives=yes")
case("krbsrvname gsslib gssdelegation", "host=h1 krbsrvname=pg gsslib=gssapi gssdelegation=0")
case("sslcompression", "host=h1 sslcompression=1")
case("sslpassword", "host=h1 sslpassword=x")
case("sslcrldir", "host=h1 sslcrldir={tmp}")
case("unknown keyword", "host=h1 frobnicate=1")
case("keyword case sensitive", "HOST=h1")
case("conninfo missing =", "host=h1 dbname")
case("conninfo unterminated quote", "host=h1 user='bob")
case("conninfo quoted escapes", "host=h1 user='b\\'ob' dbname='a\\\\b'")
case("conninfo spaces around =", "host = h1 user = bob")
case("conninfo repeated key", "host=h2 host=h1 user=a user=b", listeners=BOTH)
case("conninfo password", "host=h1 user=bob password=sekrit", listeners={"h1:5432": PW})
case("conninfo password quoted with space", "host=h1 user=bob password='se krit'", listeners={"h1:5432": PW})
case("PGPASSWORD", "host=h1 user=bob", env={"PGPASSWORD": "envpw"}, listeners={"h1:5432": PW})
case("no password but server asks", "host=h1 user=bob", listeners={"h1:5432": PW})
case("PGUSER and PGDATABASE", "host=h1", env={"PGUSER": "alice", "PGDATABASE": "adb"})
case("defaults only", None, listeners={SOCK: T, "h1:5432": T})
case("defaults socket missing", None, listeners={"127.0.0.1:5432": T, "[::1]:5432": T})
case("PGHOST socket dir", None, env={"PGHOST": "/var/run/postgresql"}, listeners={SOCK: T})
case("PGPORT only", None, env={"PGPORT": "5433"},
     listeners={"unix:/var/run/postgresql/.s.PGSQL.5433": T})
case("PGSYSCONFDIR only", None, env={"PGSYSCONFDIR": "{tmp}"}, listeners={SOCK: T})

# DATABASE_URL is pgwait's own convenience (libpq does not read it)
case("DATABASE_URL alone", None, env={"DATABASE_URL": "postgresql://bob@h1/db"},
     listeners={SOCK: T, "h1:5432": T})
case("DATABASE_URL ignored with PGHOST", None, env={"DATABASE_URL": "postgresql://bob@h2/db", "PGHOST": "h1"},
     listeners=BOTH)
case("DATABASE_URL ignored with -d", "host=h1", env={"DATABASE_URL": "postgresql://bob@h2/db"},
     listeners=BOTH)

# ---------------------------------------------------------------------------------------------
# Deliberate, documented differences: case name -> reason
# ---------------------------------------------------------------------------------------------
# Deliberate differences, each with its reason (docs/configuration.md says the same to users).
_SCHEME = ("pgwait reads any-case postgres[ql]:// and SQLAlchemy's postgresql+DRIVER:// as the URI "
           "it is (apps' DATABASE_URLs use them; the driver-dialects issue owns them); libpq, run as "
           "psql, takes such text for a database name and fails at the server")
_OTHER_SCHEME = ("pgwait refuses a URI of another scheme with exit 2 naming the scheme; libpq takes it "
                 "for a database name and fails at the server: both fail, pgwait without contacting it")
_SECRET = ("a URI given to a setting that pgwait prints (host, dbname) would put its password in "
           "every line: refused with exit 2 where libpq fails at the server or resolver")
_TLS_FILES = ("pgwait reads the certificate and key files once at start and fails (exit 3) before "
              "connecting; libpq sends SSLRequest first and fails at the handshake: same verdict")
_PROTOCOL = ("pgwait speaks protocol 3.0 (tokio-postgres): a range that allows 3.0 is accepted and 3.0 "
             "is sent; a minimum of 3.2 cannot be met and is refused with exit 2, as the issue asks")
_REPLICATION = ("a replication connection runs no SQL (SELECT 1 fails on a physical walsender): it "
                "is no readiness check, so pgwait refuses the keyword with exit 2 and a reason")
_SERVICEFILE = ("servicefile is PostgreSQL 19's keyword (PGSERVICEFILE's twin); pgwait accepts it, "
                "libpq 18 does not know it yet")
ALLOWED = {
    "DATABASE_URL alone": "docs/configuration.md: pgwait reads DATABASE_URL when nothing else is "
                          "set; libpq never reads it",
    "uri scheme upper case": _SCHEME,
    "uri scheme mixed case": _SCHEME,
    "uri sqlalchemy scheme": _SCHEME,
    "uri jdbc scheme": _OTHER_SCHEME,
    "uri35 postgre://": _OTHER_SCHEME,
    "uri keyword value dbname is a URI": _SECRET,
    "uri as PGDATABASE is a name": _SECRET,
    "uri given to -h": _SECRET,
    "uri userinfo ends at first @": (
        "both split at the first @ (host ss@h1); pgwait refuses that host with exit 2 without "
        "quoting it (it holds part of the password) where libpq fails to resolve it"),
    "uri %FF raw byte in dbname": (
        "values are UTF-8 all the way to tokio-postgres: a raw %FF byte cannot be sent, so pgwait "
        "refuses it (exit 2) where libpq sends it and the server rejects the name"),
    "ssl verify-ca without root.crt": _TLS_FILES,
    "ssl verify-full missing sslrootcert file": _TLS_FILES,
    "ssl client key group readable": _TLS_FILES,
    "ssl sslcert without key": _TLS_FILES,
    "ssl verify-full wrong host name": (
        "rustls checks the name during the handshake and aborts it; libpq completes it and then "
        "closes: both fail on the same certificate"),
    "ssl verify-full hostaddr only": (
        "libpq connects and then fails (host name must be specified); pgwait refuses the same "
        "settings at start (exit 2)"),
    "sslcertmode=require server does not ask": (
        "pgwait fails right after the handshake that showed the server did not ask; libpq sends "
        "the startup packet first and fails at AuthenticationOk: same failure, less traffic"),
    "hosts non-numeric port not reached": (
        "a port that is not a number is refused at start (exit 2); libpq fails only when it "
        "reaches that host, so an earlier host can still connect"),
    "svc006 servicefile keyword": _SERVICEFILE,
    "svc006 servicefile URI parameter": _SERVICEFILE,
    "svc servicefile keyword": _SERVICEFILE,
    "protocol min=3.2 max=None": _PROTOCOL,
    "protocol min=latest max=None": _PROTOCOL,
    "protocol min=None max=3.2": _PROTOCOL,
    "protocol min=None max=latest": _PROTOCOL,
    "protocol min=3.0 max=3.2": _PROTOCOL,
    "protocol min=3.2 server negotiates 3.0": _PROTOCOL,
    "protocol max=latest server negotiates 3.0": _PROTOCOL,
    "PGMINPROTOCOLVERSION=3.2": _PROTOCOL,
    "PGMAXPROTOCOLVERSION=3.2": _PROTOCOL,
    "replication=database": _REPLICATION,
    "replication=true": _REPLICATION,
    "replication bogus": _REPLICATION,
}
