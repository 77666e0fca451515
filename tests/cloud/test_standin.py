#!/usr/bin/env python3
"""Self-test of standin.py: starts it (plain HTTP, then HTTPS with a throwaway certificate) and
exercises every endpoint, the happy path and each check failing, and the request log.

    python3 tests/cloud/test_standin.py

Stdlib plus the `openssl` binary. Exits non-zero on the first failed check.
"""

import base64
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "standin.py")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CHECKS = 0


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(what)


class Standin:
    def __init__(self, scenario, tmp, tls=None):
        self.tmp = tmp
        n = len(os.listdir(tmp))
        self.scenario_path = os.path.join(tmp, f"scenario{n}.json")
        self.log_path = os.path.join(tmp, f"requests{n}.jsonl")
        with open(self.scenario_path, "w") as fh:
            json.dump(scenario, fh)
        cmd = [sys.executable, STANDIN, "--port", "0", "--scenario", self.scenario_path,
               "--log", self.log_path]
        if tls:
            cmd += ["--tls", *tls]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"READY (\d+)\n", line)
        check(m, f"standin printed {line!r}")
        self.port = int(m.group(1))
        self.tls = tls
        self.ctx = ssl.create_default_context(cafile=tls[0]) if tls else None

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def req(self, method, path, headers=None, form=None, body=None):
        if self.tls:
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = dict(headers or {})
        headers.setdefault("Connection", "close")
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json(self, *a, **kw):
        status, headers, data = self.req(*a, **kw)
        return status, headers, json.loads(data)

    def log(self):
        with open(self.log_path) as fh:
            return [json.loads(line) for line in fh]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(key, header, claims):
    signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signed.encode(),
                       capture_output=True, check=True)
    return signed + "." + b64url(p.stdout)


# ---------------------------------------------------------------------------------------------


def test_aws_imds(tmp):
    s = Standin({"imds_role": "r1", "imds_role_creds": [{"status": 500},
                                                         {"status": 200, "expires_in_s": 900}]}, tmp)
    try:
        status, _, _ = s.req("GET", "/latest/meta-data/iam/security-credentials/")
        check(status == 401, "IMDSv2-only: GET without token is 401")
        check(s.req("PUT", "/latest/api/token")[0] == 400, "PUT without TTL is 400")
        for ttl in ("0", "21601", "abc"):
            check(s.req("PUT", "/latest/api/token",
                        {"X-aws-ec2-metadata-token-ttl-seconds": ttl})[0] == 400, f"TTL {ttl} is 400")
        check(s.req("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                                 "X-Forwarded-For": "1.2.3.4"})[0] == 403, "XFF PUT is 403")
        check(s.req("GET", "/latest/api/token")[0] == 405, "GET token is 405")
        status, h, token = s.req("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
        check(status == 200 and token and h["x-aws-ec2-metadata-token-ttl-seconds"] == "21600", "token issued")
        tok = {"X-aws-ec2-metadata-token": token.decode()}
        check(s.req("GET", "/latest/meta-data/iam/security-credentials/",
                    {"X-aws-ec2-metadata-token": "nope"})[0] == 401, "wrong token is 401")
        status, _, body = s.req("GET", "/latest/meta-data/iam/security-credentials/", tok)
        check(status == 200 and body == b"r1", f"role list {body!r}")
        check(s.req("GET", "/latest/meta-data/iam/security-credentials/other", tok)[0] == 404, "unknown role 404")
        check(s.req("GET", "/latest/meta-data/iam/security-credentials/r1", tok)[0] == 500, "scripted 500")
        for _ in range(2):  # last step repeats
            t0 = int(time.time())
            status, _, creds = s.json("GET", "/latest/meta-data/iam/security-credentials/r1", tok)
            check(status == 200, "creds 200")
            check(creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC", "Code/Type")
            for k in ("AccessKeyId", "SecretAccessKey", "Token", "LastUpdated", "Expiration"):
                check(k in creds, f"creds has {k}")
            check(ISO.match(creds["Expiration"]), creds["Expiration"])
            exp = time.mktime(time.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            check(abs(exp - (t0 + 900)) <= 2, "expires_in_s -> Expiration")
        # short-lived session token expires
        _, _, t1 = s.req("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "1"})
        time.sleep(1.2)
        check(s.req("GET", "/latest/meta-data/iam/security-credentials/",
                    {"X-aws-ec2-metadata-token": t1.decode()})[0] == 401, "expired session token 401")
        log = s.log()
        check(log[0]["status"] == 401 and log[0]["endpoint"] == "imds_role_list", "log: first 401")
        check(all(e["status"] for e in log), "every request logged with its status")
        put = [e for e in log if e["method"] == "PUT" and e["status"] == 200][0]
        check(put["headers"]["x-aws-ec2-metadata-token-ttl-seconds"] == "21600", "log: lower-case headers")
    finally:
        s.stop()


def test_aws_container(tmp):
    s = Standin({"container_path": "/v2/credentials/abc", "container_authorization": "Bearer xyz",
                 "container_role_arn": "arn:aws:iam::123456789012:role/task",
                 "container_creds": [{"raw": "not json{", "delay_ms": 300}, {"expires_in_s": 60}]}, tmp)
    try:
        check(s.req("GET", "/v2/credentials/abc")[0] == 401, "no Authorization 401")
        check(s.req("GET", "/v2/credentials/abc", {"Authorization": "Bearer no"})[0] == 401, "wrong Authorization 401")
        check(s.req("GET", "/v2/credentials/zzz", {"Authorization": "Bearer xyz"})[0] == 404, "other path 404")
        t0 = time.time()
        status, _, body = s.req("GET", "/v2/credentials/abc", {"Authorization": "Bearer xyz"})
        check(status == 200 and body == b"not json{" and time.time() - t0 >= 0.3, "raw + delay_ms")
        status, _, creds = s.json("GET", "/v2/credentials/abc", {"Authorization": "Bearer xyz"})
        check(status == 200 and set(creds) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"},
              f"container creds {creds}")
        check(ISO.match(creds["Expiration"]), "Expiration ISO")
    finally:
        s.stop()
    s = Standin({"container_path": ["/v1/credentials"], "container_creds": {"drop": True}}, tmp)
    try:
        try:
            s.req("GET", "/v1/credentials")
            check(False, "drop closes without answer")
        except (http.client.HTTPException, ConnectionError):
            pass
        check(s.log()[0]["endpoint"] == "container_creds", "drop logged")
    finally:
        s.stop()


STS_FORM = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
            "RoleArn": "arn:aws:iam::123456789012:role/x", "RoleSessionName": "pgwait",
            "WebIdentityToken": "eyJ.wit.sig"}
NS = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}


def test_aws_sts(tmp):
    s = Standin({"sts_web_identity_token": "eyJ.wit.sig",
                 "sts": [{"expires_in_s": 1800},
                         {"status": 400, "json": {"Code": "InvalidIdentityToken", "Message": "expired"}},
                         {"status": 500}]}, tmp)
    try:
        for drop in ("Version", "RoleArn", "RoleSessionName", "WebIdentityToken"):
            f = dict(STS_FORM)
            del f[drop]
            status, _, body = s.req("POST", "/", form=f)
            code = ET.fromstring(body).find("s:Error/s:Code", NS).text
            check(status == 400 and code == ("InvalidAction" if drop == "Version" else "ValidationError"),
                  f"missing {drop}: {status} {code}")
        status, _, body = s.req("POST", "/", form=dict(STS_FORM, WebIdentityToken="other"))
        check(status == 400 and b"InvalidIdentityToken" in body, "wrong web identity token")
        status, _, body = s.req("POST", "/", form=STS_FORM)
        check(status == 200, "sts ok")
        root = ET.fromstring(body)
        check(root.tag == "{%s}AssumeRoleWithWebIdentityResponse" % NS["s"], root.tag)
        c = root.find("s:AssumeRoleWithWebIdentityResult/s:Credentials", NS)
        for k in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
            check(c.find(f"s:{k}", NS) is not None, f"sts creds {k}")
        check(ISO.match(c.find("s:Expiration", NS).text), "sts Expiration")
        r = root.find("s:AssumeRoleWithWebIdentityResult", NS)
        check(r.find("s:SubjectFromWebIdentityToken", NS) is not None, "Subject")
        check(r.find("s:AssumedRoleUser/s:Arn", NS).text ==
              "arn:aws:sts::123456789012:assumed-role/x/pgwait", "AssumedRoleUser")
        status, _, body = s.req("POST", "/", form=STS_FORM)
        e = ET.fromstring(body).find("s:Error", NS)
        check(status == 400 and e.find("s:Type", NS).text == "Sender" and e.find("s:Code", NS).text ==
              "InvalidIdentityToken" and e.find("s:Message", NS).text == "expired", "scripted 400")
        check(ET.fromstring(body).find("s:RequestId", NS) is not None, "RequestId")
        check(s.req("POST", "/", form=STS_FORM)[0] == 500, "scripted 500")
        check(s.log()[-1]["form"]["Action"] == "AssumeRoleWithWebIdentity", "log: form")
    finally:
        s.stop()


def test_azure_imds(tmp):
    s = Standin({"azure_client_id": "cid", "azure_imds": [{"status": 410}, {"status": 429}, {"status": 500},
                                                          {"expires_in_s": 3600}]}, tmp)
    q = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fossrdbms-aad.database.windows.net"
    md = {"Metadata": "true"}
    try:
        status, _, b = s.json("GET", q)
        check(status == 400 and b["error"] == "invalid_request", "no Metadata header 400")
        check(s.req("GET", q, {"Metadata": "true", "X-Forwarded-For": "1.2.3.4"})[0] == 400, "XFF 400")
        check(s.req("GET", q.replace("api-version=2018-02-01&", ""), md)[0] == 400, "no api-version 400")
        check(s.req("GET", q.split("&resource")[0], md)[0] == 400, "no resource 400")
        check(s.req("GET", q + "&client_id=other", md)[0] == 400, "unknown client_id 400")
        check(s.req("POST", q, md)[0] == 405, "POST 405")
        check([s.req("GET", q, md)[0] for _ in range(3)] == [410, 429, 500], "scripted 410/429/500")
        t0 = int(time.time())
        status, _, b = s.json("GET", q + "&client_id=cid", md)
        check(status == 200 and b["token_type"] == "Bearer", "azure imds ok")
        for k in ("access_token", "expires_in", "expires_on", "not_before", "resource", "ext_expires_in"):
            check(isinstance(b[k], str), f"{k} is a string")
        check(b["expires_in"] == "3600" and abs(int(b["expires_on"]) - t0 - 3600) <= 2, "expiry strings")
        check(b["resource"] == "https://ossrdbms-aad.database.windows.net", "resource echoed")
        e = s.log()[-1]
        check(e["query"]["client_id"] == "cid" and e["headers"]["metadata"] == "true", "log: query")
    finally:
        s.stop()


def test_azure_app_service(tmp):
    s = Standin({"azure_identity_header": "ih"}, tmp)
    q = "/msi/token?api-version=2019-08-01&resource=https://ossrdbms-aad.database.windows.net"
    try:
        check(s.req("GET", q)[0] == 400, "no X-IDENTITY-HEADER 400")
        check(s.req("GET", q, {"X-IDENTITY-HEADER": "no"})[0] == 401, "wrong X-IDENTITY-HEADER 401")
        check(s.req("GET", q.replace("2019-08-01", "2017-09-01"), {"X-IDENTITY-HEADER": "ih"})[0] == 400,
              "old api-version 400")
        check(s.req("GET", q.split("&")[0], {"X-IDENTITY-HEADER": "ih"})[0] == 400, "no resource 400")
        status, _, b = s.json("GET", q, {"X-IDENTITY-HEADER": "ih"})
        check(status == 200 and isinstance(b["expires_on"], str) and b["expires_on"].isdigit(), "app service ok")
        check({"access_token", "expires_on", "resource", "token_type"} <= set(b), "app service fields")
    finally:
        s.stop()


ENTRA = {"client_assertion": "fed", "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
         "client_id": "cid", "grant_type": "client_credentials",
         "scope": "https://ossrdbms-aad.database.windows.net/.default"}


def test_azure_entra(tmp):
    s = Standin({"azure_tenant": "tid", "azure_client_id": "cid", "azure_federated_token": "fed",
                 "azure_entra": [{"expires_in_s": 3599}, {"status": 400, "json": {"error": "invalid_request"}}]}, tmp)
    p = "/tid/oauth2/v2.0/token"
    try:
        cases = [
            (dict(ENTRA, client_assertion="bad"), 401, "invalid_client"),
            (dict(ENTRA, client_assertion_type="x"), 400, "invalid_request"),
            ({k: v for k, v in ENTRA.items() if k != "client_assertion"}, 400, "invalid_request"),
            (dict(ENTRA, grant_type="password"), 400, "unsupported_grant_type"),
            (dict(ENTRA, scope="https://ossrdbms-aad.database.windows.net"), 400, "invalid_scope"),
            (dict(ENTRA, client_id="zz"), 400, "unauthorized_client"),
            ({k: v for k, v in ENTRA.items() if k != "scope"}, 400, "invalid_request"),
        ]
        for form, want_status, want_error in cases:
            status, _, b = s.json("POST", p, form=form)
            check(status == want_status and b["error"] == want_error, f"entra {want_error}: {status} {b}")
            check(b["error_description"].startswith("AADSTS"), "AADSTS description")
        status, _, b = s.json("POST", "/other/oauth2/v2.0/token", form=ENTRA)
        check(status == 400, "tenant mismatch 400")
        check(s.req("GET", p)[0] == 400, "GET 400")
        status, _, b = s.json("POST", p, form=ENTRA)
        check(status == 200 and b == {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                                      "access_token": "standin-azure-access-token"}, f"entra ok {b}")
        status, _, b = s.json("POST", p, form=ENTRA)
        check(status == 400 and b["error"] == "invalid_request", "scripted entra error merged")
        check(s.log()[-1]["form"]["client_assertion"] == "fed", "log: form")
    finally:
        s.stop()


def test_gcp_metadata(tmp):
    s = Standin({"gcp_metadata": [{"status": 503}, {"expires_in_s": 1234}]}, tmp)
    p = "/computeMetadata/v1/instance/service-accounts/default/token"
    g = {"Metadata-Flavor": "Google"}
    try:
        check(s.req("GET", p)[0] == 403, "no Metadata-Flavor 403")
        check(s.req("GET", p, {"Metadata-Flavor": "google"})[0] == 403, "Metadata-Flavor must be Google")
        check(s.req("GET", p, {"Metadata-Flavor": "Google", "X-Forwarded-For": "1.2.3.4"})[0] == 403, "XFF 403")
        check(s.req("POST", p, g)[0] == 405, "POST 405")
        check(s.req("GET", p.replace("default", "nobody@x"), g)[0] == 404, "unknown account 404")
        check(s.req("GET", p, g)[0] == 503, "scripted 503")
        status, h, b = s.json("GET", p + "?scopes=https://www.googleapis.com/auth/sqlservice.login,openid", g)
        check(status == 200 and h["metadata-flavor"] == "Google", "answer has Metadata-Flavor")
        check(b == {"access_token": "standin-gcp-access-token", "expires_in": 1234, "token_type": "Bearer"}, f"{b}")
        e = s.log()[-1]
        check(e["scopes"] == ["https://www.googleapis.com/auth/sqlservice.login", "openid"], "log: scopes")
        check(e["query"]["scopes"].startswith("https://"), "log: query")
    finally:
        s.stop()


def test_gcp_oauth(tmp, tls=None):
    key = os.path.join(tmp, "sa.pem")
    if not os.path.exists(key):
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", key + ".pub"], check=True)
    other = os.path.join(tmp, "other.pem")
    if not os.path.exists(other):
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other],
                       check=True, capture_output=True)
    s = Standin({"gcp_public_key": key + ".pub", "gcp_client_email": "sa@p.iam.gserviceaccount.com",
                 "gcp_refresh": {"client_id": "ci", "client_secret": "cs", "refresh_token": "rt"}}, tmp, tls)
    scheme = "https" if tls else "http"
    aud = f"{scheme}://127.0.0.1:{s.port}/token"
    t = int(time.time())
    claims = {"iss": "sa@p.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/sqlservice.login",
              "aud": aud, "iat": t, "exp": t + 3600}
    hdr = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def post(jwt):
        return s.json("POST", "/token", form={"grant_type": grant, "assertion": jwt})

    try:
        status, _, b = post(make_jwt(key, hdr, claims))
        check(status == 200 and b == {"access_token": "standin-gcp-access-token", "expires_in": 3599,
                                      "token_type": "Bearer"}, f"jwt ok {status} {b}")
        check(s.log()[-1]["jwt"]["claims"]["scope"] == claims["scope"], "log: jwt claims")
        bad = [
            (make_jwt(other, hdr, claims), "invalid_grant", "signature"),
            (make_jwt(key, dict(hdr, alg="RS512"), claims), "invalid_grant", "alg"),
            (make_jwt(key, hdr, dict(claims, exp=t + 3601)), "invalid_grant", "exp-iat"),
            (make_jwt(key, hdr, dict(claims, aud="https://oauth2.googleapis.com/token")), "invalid_grant", "aud"),
            (make_jwt(key, hdr, dict(claims, iss="x@y")), "invalid_grant", "iss"),
            (make_jwt(key, hdr, {k: v for k, v in claims.items() if k != "iat"}), "invalid_grant", "iat"),
            (make_jwt(key, hdr, {k: v for k, v in claims.items() if k != "scope"}), "invalid_scope", "scope"),
            (make_jwt(key, hdr, dict(claims, iat=t - 7200, exp=t - 3600)), "invalid_grant", "expired"),
            ("a.b", "invalid_grant", "two parts"),
            ("!!.??.**", "invalid_grant", "garbage"),
        ]
        for jwt, err, what in bad:
            status, _, b = post(jwt)
            check(status == 400 and b["error"] == err, f"jwt {what}: {status} {b}")
        # tampered claims with the original signature
        good = make_jwt(key, hdr, claims).split(".")
        forged = good[0] + "." + b64url(json.dumps(dict(claims, scope="x")).encode()) + "." + good[2]
        check(post(forged)[0] == 400, "forged claims rejected")
        status, _, b = s.json("POST", "/token", form={"grant_type": "password"})
        check(status == 400 and b["error"] == "unsupported_grant_type", "grant_type")
        rf = {"grant_type": "refresh_token", "client_id": "ci", "client_secret": "cs", "refresh_token": "rt"}
        check(s.json("POST", "/token", form=rf)[0] == 200, "refresh ok")
        status, _, b = s.json("POST", "/token", form=dict(rf, refresh_token="no"))
        check(status == 400 and b["error"] == "invalid_grant", "bad refresh_token")
        status, _, b = s.json("POST", "/token", form=dict(rf, client_secret="no"))
        check(status == 401 and b["error"] == "invalid_client", "bad client_secret")
        check(s.req("GET", "/token")[0] == 405, "GET /token 405")
        check(s.req("POST", "/token", body="{}", headers={"Content-Type": "application/json"})[0] == 400,
              "JSON body 400")
    finally:
        s.stop()


def test_unknown_and_log(tmp):
    s = Standin({}, tmp)
    try:
        check(s.req("GET", "/nope")[0] == 404, "unknown path 404")
        check(s.req("GET", "/latest/meta-data/iam/security-credentials/a/b")[0] == 404, "deep path 404")
        e = s.log()[0]
        check(set(e) >= {"method", "path", "query", "headers", "status"} and e["endpoint"] is None, f"log {e}")
    finally:
        s.stop()


def test_https(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    s = Standin({}, tmp, (cert, key))
    try:
        status, _, token = s.req("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        check(status == 200, "https imds token")
        status, _, b = s.json("GET", "/latest/meta-data/iam/security-credentials/pgwait-standin-role",
                              {"X-aws-ec2-metadata-token": token.decode()})
        check(status == 200 and b["Code"] == "Success", "https imds creds")
        check(s.req("POST", "/", form=STS_FORM)[0] == 200, "https sts")
        check(s.req("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r",
                    {"Metadata": "true"})[0] == 200, "https azure")
        # a client that does not trust the cert fails the handshake; the standin keeps serving
        try:
            c = http.client.HTTPSConnection("127.0.0.1", s.port, timeout=5, context=ssl.create_default_context())
            c.request("GET", "/")
            c.getresponse()
            check(False, "untrusted cert accepted")
        except ssl.SSLError:
            pass
        check(s.req("GET", "/nope")[0] == 404, "https still serving")
    finally:
        s.stop()
    test_gcp_oauth(tmp, (cert, key))


def main():
    tests = [test_aws_imds, test_aws_container, test_aws_sts, test_azure_imds, test_azure_app_service,
             test_azure_entra, test_gcp_metadata, test_gcp_oauth, test_unknown_and_log, test_https]
    with tempfile.TemporaryDirectory() as tmp:
        for t in tests:
            d = os.path.join(tmp, t.__name__)
            os.mkdir(d)
            t(d)
            print(f"ok {t.__name__}", flush=True)
    print(f"all {len(tests)} tests, {CHECKS} checks passed")


if __name__ == "__main__":
    main()
