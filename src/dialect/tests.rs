//! Each dialect against strings from its driver's own documentation (cited), and the driver's
//! traps. The real drivers that install here are compared on the wire by
//! tests/differential/drivers_diff.py; Prisma and Npgsql cannot run here, so these tables are
//! their test, citing the docs and source lines docs/drivers.md follows.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

/// `(keyword, value)` pairs as the dialect reads them, or the error.
fn pairs(driver: Driver, text: &str) -> Result<Vec<(String, String)>, String> {
    read(driver, text, Origin::DbnameArg, &no_env)
        .map(|r| {
            let mut p = r.pairs;
            p.extend(r.settings.into_iter().map(|(k, v)| (format!("-c {k}"), v)));
            p
        })
        .map_err(|e| e.problem)
}

/// The pairs (the last value of each keyword), as `k=v` text sorted by keyword.
fn summary(driver: Driver, text: &str) -> Result<String, String> {
    let mut last: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs(driver, text)? {
        last.retain(|(p, _)| *p != k);
        last.push((k, v));
    }
    last.sort();
    Ok(last
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" "))
}

fn check(driver: Driver, table: &[(&str, Result<&str, &str>)]) {
    for (text, want) in table {
        let got = summary(driver, text);
        match want {
            Ok(want) => assert_eq!(got.as_deref(), Ok(*want), "{text}"),
            Err(words) => {
                let err = got.expect_err(text);
                assert!(err.contains(words), "{text}: {err}");
                assert!(!err.contains("SECRET"), "{text}: {err}");
            }
        }
    }
}

#[test]
fn jdbc_urls_from_pgjdbc_docs() {
    // docs/content/documentation/use.md (pgjdbc REL42.7.13).
    check(
        Driver::Jdbc,
        &[
            ("jdbc:postgresql:database", Ok("connect_timeout=10 dbname=database host=localhost port=5432 sslmode=prefer")),
            ("jdbc:postgresql://host/database", Ok("connect_timeout=10 dbname=database host=host port=5432 sslmode=prefer")),
            ("jdbc:postgresql://host:6543/database", Ok("connect_timeout=10 dbname=database host=host port=6543 sslmode=prefer")),
            ("jdbc:postgresql://[::1]:5740/accounting", Ok("connect_timeout=10 dbname=accounting host=::1 port=5740 sslmode=prefer")),
            ("jdbc:postgresql://localhost/test?user=fred&password=secret&ssl=true", Ok("connect_timeout=10 dbname=test host=localhost password=secret port=5432 sslmode=verify-full user=fred")),
            ("jdbc:postgresql://localhost:5432/postgres?options=-c%20search_path=test,public,pg_catalog%20-c%20statement_timeout=90000", Ok("connect_timeout=10 dbname=postgres host=localhost options=-c search_path=test,public,pg_catalog -c statement_timeout=90000 port=5432 sslmode=prefer")),
            ("jdbc:postgresql://node1,node2,node3/accounting?targetServerType=primary", Ok("connect_timeout=10 dbname=accounting host=node1,node2,node3 port=5432,5432,5432 sslmode=prefer target_session_attrs=read-write")),
            ("jdbc:postgresql://node1,node2,node3/accounting?targetServerType=preferSecondary&loadBalanceHosts=true", Ok("connect_timeout=10 dbname=accounting host=node1,node2,node3 load_balance_hosts=random port=5432,5432,5432 sslmode=prefer target_session_attrs=prefer-standby")),
            ("jdbc:postgresql://localhost:5432/test?prepareThreshold=3", Ok("connect_timeout=10 dbname=test host=localhost port=5432 sslmode=prefer")),
            // The example: a host list, credentials in the query, ssl=true.
            ("jdbc:postgresql://db1:5432,db2:5432/app?user=u&password=p&targetServerType=primary&ssl=true", Ok("connect_timeout=10 dbname=app host=db1,db2 password=p port=5432,5432 sslmode=verify-full target_session_attrs=read-write user=u")),
            // ssl=false is prefer in pgjdbc, not "no TLS"; query values are form-decoded.
            ("jdbc:postgresql://h/db?ssl=false&password=se%2Bcret+x", Ok("connect_timeout=10 dbname=db host=h password=se+cret x port=5432 sslmode=prefer")),
            ("jdbc:postgresql://h/db?currentSchema=app&connectTimeout=3&ApplicationName=svc", Ok("-c search_path=app application_name=svc connect_timeout=3 dbname=db host=h port=5432 sslmode=prefer")),
            ("jdbc:postgresql://bad:1/postgres?host=127.0.0.1&port=6000", Ok("connect_timeout=10 dbname=postgres host=127.0.0.1 port=6000 sslmode=prefer")),
            ("jdbc:postgresql://u:SECRET@h:5432/db", Err("no user:password@")),
            ("jdbc:postgresql://h:99999/db", Err("from 1 to 65535")),
            ("jdbc:postgresql://h", Err("must end with")),
            ("jdbc:postgresql://h/db?sslmode=sometimes", Err("Invalid sslmode value")),
            ("jdbc:postgresql://h/db?targetServerType=Primary", Err("Invalid targetServerType")),
            ("jdbc:postgresql://h/db?connectTimeout=1.5", Err("whole number")),
            ("jdbc:postgresql://h/db?socketTimeout=1.5", Err("whole number")),
            ("jdbc:postgresql://h/db?sslfactory=com.example.Factory", Err("Java class")),
            ("jdbc:postgresql://h/db?ssl=true&sslfactory=org.postgresql.ssl.NonValidatingFactory", Ok("connect_timeout=10 dbname=db host=h port=5432 sslmode=require")),
        ],
    );
}

#[test]
fn node_postgres_urls_from_its_docs() {
    // docs/pages/features/connecting.mdx, ssl.mdx, pg-connection-string/README.md (8.8 / 2.5).
    check(
        Driver::NodePostgres,
        &[
            ("postgres://user:password@host:5432/database", Ok("dbname=database host=host password=password port=5432 sslmode=disable user=user")),
            ("postgresql://dbuser:secretpassword@database.server.com:3211/mydb", Ok("dbname=mydb host=database.server.com password=secretpassword port=3211 sslmode=disable user=dbuser")),
            ("postgres://u:p@db/app?sslmode=require", Ok("dbname=app host=db password=p sslmode=verify-full user=u")),
            ("postgres://u:p@db/app?ssl=true", Ok("dbname=app host=db password=p sslmode=verify-full user=u")),
            ("postgres://u:p@db/app?ssl=1", Ok("dbname=app host=db password=p sslmode=verify-full user=u")),
            ("postgres://u:p@db/app?sslmode=no-verify", Ok("dbname=app host=db password=p sslmode=require user=u")),
            ("postgres://u:p@db/app?ssl=0", Ok("dbname=app host=db password=p sslmode=disable user=u")),
            ("postgres://someuser:somepassword@somehost:381/somedatabase", Ok("dbname=somedatabase host=somehost password=somepassword port=381 sslmode=disable user=someuser")),
            ("socket://user:pass@/var/run/pgsql?db=app", Ok("dbname=app host=/var/run/pgsql password=pass sslmode=disable user=user")),
            ("/var/run/pgsql mydb", Ok("dbname=mydb host=/var/run/pgsql sslmode=disable")),
            ("salesdata", Ok("dbname=salesdata sslmode=disable")),
            ("socket:/var/run/pgsql?db=app", Ok("dbname=app host=/var/run/pgsql sslmode=disable")),
            ("postgres://u@%2Fvar%2Frun%2Fpostgresql/app", Ok("dbname=app host=/var/run/postgresql sslmode=disable user=u")),
            // An IP host: Node checks the chain, not the name.
            ("postgres://u:p@10.0.0.5/app?sslmode=verify-full", Ok("dbname=app host=10.0.0.5 password=p sslmode=verify-ca user=u")),
            // Any scheme is PostgreSQL to node-postgres; the host is lower-cased; %2F stays.
            ("mysql://u@DB.Example/my%2Fdb%20x", Ok("dbname=my%2Fdb x host=db.example sslmode=disable user=u")),
            ("postgres://u:p@db/app?statement_timeout=5s&application_name=web", Ok("-c statement_timeout=5 application_name=web dbname=app host=db password=p sslmode=disable user=u")),
            ("postgres://u:p@db/app?ssl=false", Err("ssl=false")),
            ("postgres://u:SECRET@h1,h2/app", Err("no host lists")),
            ("postgres://u:p@db:abc/app", Err("not a number")),
        ],
    );
}

#[test]
fn pgx_urls_from_its_docs() {
    // pgconn config.go doc comment, pgxpool/pool.go, pgx README (v4).
    check(
        Driver::Pgx,
        &[
            ("postgres://username:password@localhost:5432/database_name", Ok("dbname=database_name host=localhost password=password port=5432 user=username")),
            ("postgres://jack:secret@pg.example.com:5432/mydb?sslmode=verify-ca", Ok("dbname=mydb host=pg.example.com password=secret port=5432 sslmode=verify-ca user=jack")),
            ("user=jack password=secret host=pg.example.com port=5432 dbname=mydb sslmode=verify-ca", Ok("dbname=mydb host=pg.example.com password=secret port=5432 sslmode=verify-ca user=jack")),
            ("postgres://jack:secret@foo.example.com:5432,bar.example.com:5432/mydb", Ok("dbname=mydb host=foo.example.com,bar.example.com password=secret port=5432,5432 user=jack")),
            ("postgres://jack:secret@pg.example.com:5432/mydb?sslmode=verify-ca&pool_max_conns=10", Ok("dbname=mydb host=pg.example.com password=secret port=5432 sslmode=verify-ca user=jack")),
            ("postgres://u:p@db/app?pool_max_conns=10&pool_min_conns=2", Ok("dbname=app host=db password=p user=u")),
            // A port only where written serves every host.
            ("postgres://u:p@h1,h2:5433/app", Ok("dbname=app host=h1,h2 password=p port=5433,5433 user=u")),
            // Unknown keys are startup settings; the server judges them.
            ("postgres://u:p@db/app?search_path=app&statement_timeout=5s&application_name=api", Ok("-c search_path=app -c statement_timeout=5s application_name=api dbname=app host=db password=p user=u")),
            ("postgres://u:p@db/app?ssl=true", Ok("-c ssl=true dbname=app host=db password=p user=u")),
            // The first of a repeated key wins; query parts beat the authority.
            ("postgres://u:p@db/app?user=a&user=b", Ok("dbname=app host=db password=p user=a")),
            ("postgres://u:p@db/app?sslmode=no-verify", Err("sslmode is not one of")),
            ("postgres://:SECRET@db/app", Err("empty user name")),
            ("postgres://u:p@db/app?sslrootcert=system", Err("sslrootcert=system")),
            // No port written: PGPORT or 5432 decide; options is a startup parameter.
            ("postgres://u@db/app?options=-c%20search_path%3Dx", Ok("dbname=app host=db options=-c search_path=x user=u")),
        ],
    );
}

#[test]
fn asyncpg_and_sqlalchemy_urls_from_their_docs() {
    // asyncpg connection.py connect() docstring; SQLAlchemy dialects/postgresql/asyncpg.py.
    check(
        Driver::Asyncpg,
        &[
            ("postgres://user:password@host:5432/database?option=value", Ok("-c option=value dbname=database host=host password=password port=5432 user=user")),
            ("postgres://dbuser@[fe80::1ff:fe23:4567:890a%25eth0]/dbname", Ok("dbname=dbname host=fe80::1ff:fe23:4567:890a%eth0 user=dbuser")),
            ("postgresql://postgres@localhost/test", Ok("dbname=test host=localhost user=postgres")),
            ("postgresql://user:pass@host1:5432,host2:5433/db?target_session_attrs=read-write", Ok("dbname=db host=host1,host2 password=pass port=5432,5433 target_session_attrs=read-write user=user")),
            ("postgresql:///mydb?host=/var/run/postgresql", Ok("dbname=mydb host=/var/run/postgresql")),
            ("postgresql://u:p@db.example.com/app?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem", Ok("dbname=app host=db.example.com password=p sslmode=verify-full sslrootcert=/etc/ssl/rds.pem user=u")),
            ("postgresql://u:p@h/db?application_name=worker&search_path=app", Ok("-c search_path=app application_name=worker dbname=db host=h password=p user=u")),
            ("postgres://u:p%40ss@h/db?sslmode=require", Ok("dbname=db host=h password=p@ss sslmode=require user=u")),
            // A trap: asyncpg has no connect_timeout key, so the server gets it as a setting.
            ("postgresql://u:p@h/db?connect_timeout=10", Ok("-c connect_timeout=10 dbname=db host=h password=p user=u")),
            ("postgresql://u:p@h/db?a", Err("no \"=\"")),
            // The URL's user beats ?user=; ?host=h:port is a host list item; blank values drop.
            ("postgresql://u@h/db?user=other&sslmode=", Ok("dbname=db host=h user=u")),
            ("postgresql://u@/db?host=10.0.0.5:6000", Ok("dbname=db host=10.0.0.5 port=6000 user=u")),
            ("postgresql://u@%2Ftmp%2Fpg:6000/db", Ok("dbname=db host=/tmp/pg port=6000 user=u")),
            ("postgresql://u:p@h/db?sslmode=Require", Err("sslmode is not one of")),
            // SQLAlchemy's postgresql+asyncpg://: query keys are asyncpg.connect() arguments.
            ("postgresql+asyncpg://u:p@db/app?ssl=require", Ok("dbname=app host=db password=p sslmode=require user=u")),
            ("postgresql+asyncpg://u:p@db:6432/app", Ok("dbname=app host=db password=p port=6432 user=u")),
            ("postgresql+asyncpg://u:p@db/app?sslmode=require", Err("not an argument of asyncpg.connect()")),
            ("postgresql+asyncpg://u:p@db/app?timeout=10", Err("TypeError")),
            ("postgresql+asyncpg://u:p@h1:5432,h2:5432/app", Err("ValueError")),
            ("postgresql+asyncpg://u:p@/app?host=HostA:5432&host=HostB:5433", Ok("dbname=app host=HostA,HostB password=p port=5432,5433 user=u")),
            ("postgresql+asyncpg://u:p@/app?host=HostA:5432&host=HostB", Err("a port for every host")),
            ("postgresql+asyncpg://u:p@db/app?ssl=true", Err("sslmode name")),
        ],
    );
}

#[test]
fn rails_urls_from_the_rails_guides() {
    // guides/source/configuring.md ("Configuring a Database"), ConnectionUrlResolver (7.x).
    check(
        Driver::Rails,
        &[
            ("postgresql://localhost/my_database", Ok("dbname=my_database host=localhost")),
            ("postgres://u:p@db/app?pool=5&encoding=unicode&prepared_statements=false", Ok("-c client_encoding=unicode dbname=app host=db password=p user=u")),
            ("postgresql://u:p@db:5433/app?sslmode=require&connect_timeout=5", Ok("connect_timeout=5 dbname=app host=db password=p port=5433 sslmode=require user=u")),
            ("postgresql://db/app?target_session_attrs=read-write", Ok("dbname=app host=db target_session_attrs=read-write")),
            ("postgres:///app?host=/var/run/postgresql", Ok("dbname=app host=/var/run/postgresql")),
            ("postgresql://u@db/app?application_name=web&sslrootcert=/etc/ca.pem", Ok("application_name=web dbname=app host=db sslrootcert=/etc/ca.pem user=u")),
            ("POSTGRES://u:p+q@db/app", Ok("dbname=app host=db password=p+q user=u")),
            ("postgresql://u:p@db/app?schema_search_path=app,public&reaping_frequency=10", Ok("-c search_path=app,public dbname=app host=db password=p user=u")),
            ("postgres://u:SECRET@h1,h2/app", Err("URI::InvalidURIError")),
            // username/database win over ?user=/?dbname=; the pg gem's to_i connect_timeout.
            ("postgres://a@h/db?user=b&dbname=other&connect_timeout=abc", Ok("connect_timeout=0 dbname=db host=h user=a")),
            ("postgres://a@h/db?connect_timeout=1", Ok("connect_timeout=2 dbname=db host=h user=a")),
            ("postgres://u:p@db_1/app", Err("\"_\"")),
            ("mysql://u:p@db/app", Err("AdapterNotSpecified")),
            ("postgres://u:SECRET@/app", Err("without a host")),
        ],
    );
}

#[test]
fn prisma_urls_from_prismas_docs() {
    // prisma.io/docs/orm/overview/databases/postgresql, .../data-sources; quaint url.rs tests.
    check(
        Driver::Prisma,
        &[
            ("postgresql://johndoe:mypassword@localhost:5432/mydb?schema=public", Ok("-c search_path=\"public\" connect_timeout=5 dbname=mydb host=localhost password=mypassword port=5432 sslmode=prefer user=johndoe")),
            ("postgresql://USER:PASSWORD@HOST:5432/DATABASE?schema=myschema&connection_limit=5&socket_timeout=3", Ok("-c search_path=\"myschema\" connect_timeout=5 dbname=DATABASE host=HOST password=PASSWORD port=5432 sslmode=prefer user=USER")),
            ("postgresql://USER:PASSWORD@localhost/database?host=/var/run/postgresql/", Ok("-c search_path=\"public\" connect_timeout=5 dbname=database host=/var/run/postgresql/ password=PASSWORD sslmode=prefer user=USER")),
            ("postgres://USER:PASSWORD@db.prisma.io:5432/?sslmode=require", Ok("-c search_path=\"public\" connect_timeout=5 dbname= host=db.prisma.io password=PASSWORD port=5432 sslmode=require user=USER")),
            ("postgresql://u:p@ec2-46-137-91-216.eu-west-1.compute.amazonaws.com:5432/d50rgmkqi2ipus?schema=hello-prisma", Ok("-c search_path=\"hello-prisma\" connect_timeout=5 dbname=d50rgmkqi2ipus host=ec2-46-137-91-216.eu-west-1.compute.amazonaws.com password=p port=5432 sslmode=prefer user=u")),
            ("postgresql://u:p@h:5432/db?pgbouncer=true", Ok("connect_timeout=5 dbname=db host=h password=p port=5432 sslmode=prefer user=u")),
            ("postgresql://u:p@[2001:db8:1234::ffff]:5432/dbname", Ok("-c search_path=\"public\" connect_timeout=5 dbname=dbname host=2001:db8:1234::ffff password=p port=5432 sslmode=prefer user=u")),
            ("postgresql://u:p@h/db?sslmode=require&sslaccept=strict", Ok("-c search_path=\"public\" connect_timeout=5 dbname=db host=h password=p sslmode=verify-full user=u")),
            // verify-full is not a Prisma sslmode: silently prefer (and unverified).
            ("postgresql://u:p@h/db?sslmode=verify-full", Ok("-c search_path=\"public\" connect_timeout=5 dbname=db host=h password=p sslmode=prefer user=u")),
            ("postgresql://u:p@h/db?connection_limit=many", Err("whole number")),
            ("postgresql://u:p@h/db?pgbouncer=yes", Err("true or false")),
            ("postgresql://h/db", Err("empty user name")),
            ("prisma://accelerate.prisma-data.net/?api_key=SECRET", Err("Accelerate")),
        ],
    );
}

#[test]
fn npgsql_strings_from_npgsql_docs() {
    // npgsql.org/doc/connection-string-parameters.html, security.html, failover-and-load-balancing.html.
    check(
        Driver::Npgsql,
        &[
            ("Host=myserver;Username=mylogin;Password=mypass;Database=mydatabase", Ok("connect_timeout=15 dbname=mydatabase host=myserver password=mypass sslmode=prefer user=mylogin")),
            ("Host=db;Port=5432;Database=app;Username=u;Password=p;SSL Mode=Require;Trust Server Certificate=true", Ok("connect_timeout=15 dbname=app host=db password=p port=5432 sslmode=require user=u")),
            ("Host=myserver;Username=mylogin;Password=mypass;Database=mydatabase;SSL Mode=VerifyFull;Root Certificate=/etc/ca.pem", Ok("connect_timeout=15 dbname=mydatabase host=myserver password=mypass sslmode=verify-full sslrootcert=/etc/ca.pem user=mylogin")),
            ("Host=server1,server2;Database=app;Username=u;Password=p;Target Session Attributes=primary", Ok("connect_timeout=15 dbname=app host=server1,server2 password=p port=5432,5432 sslmode=prefer target_session_attrs=primary user=u")),
            ("Host=server1:5433,server2;Username=u;Load Balance Hosts=true", Ok("connect_timeout=15 host=server1,server2 load_balance_hosts=random port=5433,5432 sslmode=prefer user=u")),
            ("Server=db;User Id=u;Password='p;w''d';Timeout=5;Pooling=false;Maximum Pool Size=50", Ok("connect_timeout=5 host=db password=p;w'd sslmode=prefer user=u")),
            ("host=/var/run/postgresql;username=u;database=app", Ok("connect_timeout=15 dbname=app host=/var/run/postgresql sslmode=prefer user=u")),
            ("Host=db;Username=u;Search Path=app,public;Application Name=api", Ok("-c search_path=app,public application_name=api connect_timeout=15 host=db sslmode=prefer user=u")),
            ("Host=db;Username=u;SSL Mode=verify-full", Err("SSL Mode is not one of")),
            ("Host=db;Username=u;Target Session Attributes=primary", Err("needs several hosts")),
            ("Username=u;Password=SECRET", Err("Host is required")),
            ("Host=db;Usrname=u", Err("\"Usrname\" is not an Npgsql keyword")),
            ("Host=db;Password=SECRET;Pooling", Err("no \"=\"")),
            ("Host=db;Username=u;Tcp Keepalive Time=30;MaxPoolSize=10;SslMode=Disable", Ok("connect_timeout=15 host=db sslmode=disable user=u")),
            ("Host=db;Username=u;Timeout=2000", Err("from 0 to 1024")),
            ("Host=db;Password=ab;Pa55=x", Err("a keyword (not shown)")),
        ],
    );
}

#[test]
fn dialects_are_recognised_from_the_string_and_named_by_flag() {
    let table = [
        ("jdbc:postgresql://h/db", Some(Driver::Jdbc)),
        ("postgresql+asyncpg://u@h/db", Some(Driver::Asyncpg)),
        ("Host=db;Username=u;Password=p", Some(Driver::Npgsql)),
        ("postgresql://u@h/db", None),
        ("host=db user=u", None),
        ("postgresql+psycopg2://u@h/db", None),
    ];
    for (text, want) in table {
        assert_eq!(recognise(text).map(|(d, _)| d), want, "{text}");
    }
    for (name, driver) in DRIVERS {
        assert_eq!(Driver::parse(name), Some(driver));
        assert_eq!(driver.name(), name);
    }
    assert_eq!(Driver::parse("Node-Postgres"), Some(Driver::NodePostgres));
    assert_eq!(Driver::parse("odbc"), None);
}

#[test]
fn node_postgres_reads_pgsslmode_only_without_ssl_keys() {
    let env = |var: &str| (var == "PGSSLMODE").then(|| "require".to_string());
    let read_with = |text: &str| {
        read(Driver::NodePostgres, text, Origin::DbnameArg, &env)
            .unwrap()
            .pairs
    };
    assert!(read_with("postgres://u@db/app").contains(&("sslmode".into(), "verify-full".into())));
    assert!(read_with("postgres://u@db/app?ssl=0").contains(&("sslmode".into(), "disable".into())));
}
