#!/usr/bin/env python3
"""Local stand-ins of the cloud credential endpoints pgwait's `--iam aws|azure|gcp` talks to.

    python3 tests/cloud/standin.py --port 0 --scenario SCENARIO.json --log REQUESTS.jsonl \
        [--tls CERT KEY]

Binds 127.0.0.1, prints `READY <port>` once listening, serves until killed. Every request is
appended to the log as one JSON line (see README.md). Each endpoint checks what the real service
requires and answers like it when a check fails; otherwise it answers the next scripted step of
its sequence in the scenario (README.md has the format). Stdlib only, plus the `openssl` binary
for RS256 verification.
"""

import argparse
import base64
import binascii
import datetime
import http.server
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape as xml_escape

# ---------------------------------------------------------------------------------------------
# Scenario: settings plus one scripted sequence per endpoint.

ENDPOINTS = (
    "imds_token",
    "imds_role_list",
    "imds_role_creds",
    "container_creds",
    "sts",
    "azure_imds",
    "azure_app_service",
    "azure_entra",
    "gcp_metadata",
    "gcp_oauth",
)

DEFAULTS = {
    # AWS
    "imds_role": "pgwait-standin-role",
    "imds_allow_v1": False,
    "container_path": "/v2/credentials/standin",
    "container_authorization": None,
    "container_role_arn": None,
    "aws_access_key_id": "ASIASTANDINEXAMPLE01",
    "aws_secret_access_key": "standin/secret/key/EXAMPLEKEY0123456789ab",
    "aws_session_token": "standin-session-token",
    "sts_role_arn": None,  # when set, RoleArn must equal it (else AccessDenied 403)
    "sts_web_identity_token": None,  # when set, WebIdentityToken must equal it
    # Azure
    "azure_access_token": "standin-azure-access-token",
    "azure_client_id": None,  # when set, a request's client_id must equal it
    "azure_identity_header": "standin-identity-header",
    "azure_tenant": None,  # when set, the Entra path's tenant must equal it
    "azure_federated_token": "standin-federated-token",
    # GCP
    "gcp_access_token": "standin-gcp-access-token",
    "gcp_service_account": "standin@project.iam.gserviceaccount.com",
    "gcp_public_key": None,  # PEM text or file path (public or private key)
    "gcp_client_email": None,  # when set, the JWT's iss must equal it
    "gcp_aud": None,  # expected JWT aud; default: this server's URL of the path posted to
    "gcp_refresh": None,  # {"client_id","client_secret","refresh_token"}
}


class Scenario:
    def __init__(self, data):
        unknown = [k for k in data if k not in DEFAULTS and k not in ENDPOINTS]
        if unknown:
            raise SystemExit(f"standin: unknown scenario keys: {unknown}")
        self.settings = dict(DEFAULTS)
        self.settings.update({k: v for k, v in data.items() if k in DEFAULTS})
        self.steps = {}
        for name in ENDPOINTS:
            steps = data.get(name, [{}])
            if isinstance(steps, dict):
                steps = [steps]
            if not steps:
                steps = [{}]
            self.steps[name] = steps
        self.counters = {name: 0 for name in ENDPOINTS}
        self.lock = threading.Lock()

    def __getitem__(self, key):
        return self.settings[key]

    def next_step(self, endpoint):
        """The endpoint's next scripted answer; the last one repeats."""
        with self.lock:
            steps = self.steps[endpoint]
            i = self.counters[endpoint]
            self.counters[endpoint] = i + 1
            return dict(steps[min(i, len(steps) - 1)])


# ---------------------------------------------------------------------------------------------
# Helpers.


def now():
    return int(time.time())


def iso_utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def merge(base, override):
    """`override` on top of `base`; a null value deletes the key."""
    out = dict(base)
    for k, v in (override or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def b64url_decode(text):
    text = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode("ascii"))


class Reply:
    """What to answer: status, headers, body; `reason` is why a check failed (logged)."""

    def __init__(self, status, body=b"", ctype="application/json", headers=None, reason=None,
                 delay_ms=0, drop=False):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.ctype = ctype
        self.headers = dict(headers or {})
        self.reason = reason
        self.delay_ms = delay_ms
        self.drop = drop


def json_reply(status, obj, reason=None, headers=None):
    return Reply(status, json.dumps(obj), "application/json; charset=utf-8", headers, reason)


def scripted(step, default_ok, default_err, ctype="application/json; charset=utf-8",
             headers=None):
    """The reply for a scripted `step`. `default_ok(step)` / `default_err(step, status)` build
    the default body (a dict for JSON, else str); `json` merges onto it, `raw` replaces it."""
    status = int(step.get("status", 200))
    hdrs = dict(headers or {})
    hdrs.update(step.get("headers", {}))
    ctype = step.get("content_type", ctype)
    if "raw" in step:
        body = step["raw"]
    else:
        base = default_ok(step) if 200 <= status < 300 else default_err(step, status)
        if isinstance(base, dict):
            body = json.dumps(merge(base, step.get("json")))
        else:
            body = base
    r = Reply(status, body, ctype, hdrs, delay_ms=int(step.get("delay_ms", 0)),
              drop=bool(step.get("drop", False)))
    return r


def expires_in(step, default=3599):
    return int(step.get("expires_in_s", default))


# ---------------------------------------------------------------------------------------------
# AWS IMDSv2 (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html)

IMDS_CREDS_PREFIX = "/latest/meta-data/iam/security-credentials/"


class Imds:
    def __init__(self, scenario):
        self.sc = scenario
        self.tokens = {}  # token -> expiry (epoch seconds, float)
        self.lock = threading.Lock()

    def put_token(self, req):
        if req.command != "PUT":
            return Reply(405, "", "text/plain", {"Allow": "OPTIONS, PUT"},
                         reason="token: method is not PUT")
        if "x-forwarded-for" in req.hdrs:
            return Reply(403, "", "text/plain", reason="token: X-Forwarded-For present")
        ttl = req.hdrs.get("x-aws-ec2-metadata-token-ttl-seconds")
        if ttl is None:
            return Reply(400, "", "text/plain",
                         reason="token: missing X-aws-ec2-metadata-token-ttl-seconds")
        if not re.fullmatch(r"[0-9]+", ttl.strip()) or not 1 <= int(ttl) <= 21600:
            return Reply(400, "", "text/plain", reason=f"token: TTL {ttl!r} not in 1..21600")
        ttl = int(ttl)
        step = self.sc.next_step("imds_token")
        token = step.get("token") or ("AQAEA" + secrets.token_urlsafe(40))
        status = int(step.get("status", 200))
        if 200 <= status < 300 and "raw" not in step:
            with self.lock:
                self.tokens[token] = time.time() + ttl
        return scripted(step, lambda s: token, lambda s, st: "", "text/plain",
                        {"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": str(ttl)})

    def _check_token(self, req):
        token = req.hdrs.get("x-aws-ec2-metadata-token")
        if token is None:
            if self.sc["imds_allow_v1"]:
                return None
            return Reply(401, "", "text/plain", reason="metadata: no X-aws-ec2-metadata-token")
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None:
            return Reply(401, "", "text/plain", reason="metadata: unknown session token")
        if expiry < time.time():
            return Reply(401, "", "text/plain", reason="metadata: session token expired")
        return None

    def get(self, req):
        if req.command not in ("GET", "HEAD"):
            return Reply(405, "", "text/plain", {"Allow": "OPTIONS, GET, HEAD"},
                         reason="metadata: method is not GET")
        bad = self._check_token(req)
        if bad:
            return bad
        role = self.sc["imds_role"]
        name = req.path_only[len(IMDS_CREDS_PREFIX):]
        if name == "":
            if not role:
                return Reply(404, NOT_FOUND_HTML, "text/html", reason="no role attached")
            step = self.sc.next_step("imds_role_list")
            return scripted(step, lambda s: role, lambda s, st: "", "text/plain")
        if not role or name != role:
            return Reply(404, NOT_FOUND_HTML, "text/html", reason=f"no role {name!r}")
        step = self.sc.next_step("imds_role_creds")

        def ok(s):
            t = now()
            return {
                "Code": "Success",
                "LastUpdated": iso_utc(t - 60),
                "Type": "AWS-HMAC",
                "AccessKeyId": self.sc["aws_access_key_id"],
                "SecretAccessKey": self.sc["aws_secret_access_key"],
                "Token": self.sc["aws_session_token"],
                "Expiration": iso_utc(t + expires_in(s, 6 * 3600)),
            }

        return scripted(step, ok, lambda s, st: "", "text/plain")


NOT_FOUND_HTML = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 '
    'Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html '
    'xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>404 - '
    "Not Found</title>\n </head>\n <body>\n  <h1>404 - Not Found</h1>\n </body>\n</html>\n"
)


# ---------------------------------------------------------------------------------------------
# AWS container credentials (ECS task role / EKS Pod Identity)


def container_creds(sc, req):
    if req.command != "GET":
        return json_reply(405, {"code": "MethodNotAllowed", "message": "GET only"},
                          reason="container: method is not GET")
    want = sc["container_authorization"]
    if want is not None:
        got = req.hdrs.get("authorization")
        if got is None:
            return json_reply(401, {"code": "InvalidToken", "message": "missing Authorization"},
                              reason="container: no Authorization header")
        if got != want:
            return json_reply(401, {"code": "InvalidToken", "message": "invalid Authorization"},
                              reason="container: Authorization mismatch")
    step = sc.next_step("container_creds")

    def ok(s):
        body = {
            "AccessKeyId": sc["aws_access_key_id"],
            "SecretAccessKey": sc["aws_secret_access_key"],
            "Token": sc["aws_session_token"],
            "Expiration": iso_utc(now() + expires_in(s, 6 * 3600)),
        }
        if sc["container_role_arn"]:
            body["RoleArn"] = sc["container_role_arn"]
        return body

    return scripted(step, ok, lambda s, st: {"code": "InternalError", "message": "standin"})


# ---------------------------------------------------------------------------------------------
# AWS STS AssumeRoleWithWebIdentity (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html)

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def sts_error(status, code, message, etype="Sender", reason=None):
    body = (
        f'<ErrorResponse xmlns="{STS_NS}">\n  <Error>\n    <Type>{xml_escape(etype)}</Type>\n'
        f"    <Code>{xml_escape(code)}</Code>\n    <Message>{xml_escape(message)}</Message>\n"
        f"  </Error>\n  <RequestId>{new_request_id()}</RequestId>\n</ErrorResponse>\n"
    )
    return Reply(status, body, "text/xml", reason=reason or f"sts: {code}")


def new_request_id():
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def sts(sc, req):
    if req.command not in ("GET", "POST"):
        return sts_error(405, "InvalidAction", "method not allowed")
    params = {k: v for k, v in req.query.items()}
    params.update(req.form or {})
    action = params.get("Action")
    if not action:
        return sts_error(400, "MissingAction", "Missing Action")
    version = params.get("Version")
    if action != "AssumeRoleWithWebIdentity" or version != "2011-06-15":
        return sts_error(400, "InvalidAction",
                         f"Could not find operation {action} for version {version or 'NO_VERSION_SPECIFIED'}")
    errors = []
    arn = params.get("RoleArn")
    session = params.get("RoleSessionName")
    wit = params.get("WebIdentityToken")
    if arn is None:
        errors.append("Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
    elif not 20 <= len(arn) <= 2048:
        errors.append(f"Value '{arn}' at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048")
    if session is None:
        errors.append("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
    elif not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
        errors.append(f"Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64")
    if wit is None:
        errors.append("Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null")
    elif not 4 <= len(wit) <= 20000:
        errors.append("Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000")
    duration = params.get("DurationSeconds")
    if duration is not None and (not duration.isdigit() or not 900 <= int(duration) <= 43200):
        errors.append(f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200")
    if errors:
        n = len(errors)
        msg = f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors)
        return sts_error(400, "ValidationError", msg, reason="sts: ValidationError")
    if sc["sts_role_arn"] and arn != sc["sts_role_arn"]:
        return sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    if sc["sts_web_identity_token"] and wit != sc["sts_web_identity_token"]:
        return sts_error(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements")
    step = sc.next_step("sts")
    status = int(step.get("status", 200))
    if "raw" in step:
        return scripted(step, None, None, "text/xml")
    if not 200 <= status < 300:
        err = merge({"Type": "Sender" if status < 500 else "Receiver",
                     "Code": "InvalidIdentityToken" if status < 500 else "InternalFailure",
                     "Message": "scripted error"}, step.get("json"))
        r = sts_error(status, err.get("Code", ""), err.get("Message", ""), err.get("Type", ""),
                      reason=None)
        r.reason, r.delay_ms, r.drop = None, int(step.get("delay_ms", 0)), bool(step.get("drop"))
        r.headers.update(step.get("headers", {}))
        return r
    account = (re.match(r"arn:[^:]*:iam::(\d{12}):role/", arn) or [None, "123456789012"])[1]
    role_name = arn.rsplit("/", 1)[-1]
    f = merge({
        "AccessKeyId": sc["aws_access_key_id"],
        "SecretAccessKey": sc["aws_secret_access_key"],
        "SessionToken": sc["aws_session_token"],
        "Expiration": iso_utc(now() + expires_in(step, int(duration or 3600))),
        "SubjectFromWebIdentityToken": "system:serviceaccount:default:pgwait",
        "Audience": "sts.amazonaws.com",
        "Provider": "arn:aws:iam::%s:oidc-provider/oidc.standin.example" % account,
        "AssumedRoleId": f"AROASTANDINEXAMPLEID:{session}",
        "Arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
    }, step.get("json"))

    def el(name, indent):
        return f"{indent}<{name}>{xml_escape(str(f[name]))}</{name}>\n" if name in f else ""

    creds = "".join(el(n, "      ") for n in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"))
    user = "".join(el(n, "      ") for n in ("AssumedRoleId", "Arn"))
    body = (
        f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">\n'
        "  <AssumeRoleWithWebIdentityResult>\n"
        + el("SubjectFromWebIdentityToken", "    ")
        + el("Audience", "    ")
        + f"    <AssumedRoleUser>\n{user}    </AssumedRoleUser>\n"
        + f"    <Credentials>\n{creds}    </Credentials>\n"
        + el("Provider", "    ")
        + "  </AssumeRoleWithWebIdentityResult>\n"
        + f"  <ResponseMetadata>\n    <RequestId>{new_request_id()}</RequestId>\n  </ResponseMetadata>\n"
        "</AssumeRoleWithWebIdentityResponse>\n"
    )
    return Reply(status, body, step.get("content_type", "text/xml"), step.get("headers"),
                 delay_ms=int(step.get("delay_ms", 0)), drop=bool(step.get("drop")))


# ---------------------------------------------------------------------------------------------
# Azure IMDS managed identity (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token)


def azure_imds(sc, req):
    def bad(msg, error="invalid_request", status=400):
        return json_reply(status, {"error": error, "error_description": msg}, reason=f"azure imds: {msg}")

    if req.command != "GET":
        return bad("Method not allowed", "method_not_allowed", 405)
    if "x-forwarded-for" in req.hdrs:
        return bad("Request contains X-Forwarded-For header")
    if req.hdrs.get("metadata", "").strip().lower() != "true":
        return bad("Required metadata header not specified")
    q = req.query
    if not q.get("api-version"):
        return json_reply(400, {"error": "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds", "newest-versions": ["2023-07-01", "2021-12-13", "2021-11-15"]},
                          reason="azure imds: no api-version")
    if not q.get("resource"):
        return bad("Required query variable 'resource' is missing")
    want = sc["azure_client_id"]
    if q.get("client_id") and want and q["client_id"] != want:
        return bad("Identity not found")
    step = sc.next_step("azure_imds")

    def ok(s):
        t, e = now(), expires_in(s, 86399)
        return {
            "access_token": sc["azure_access_token"],
            "client_id": want or q.get("client_id") or "00000000-0000-0000-0000-000000000000",
            "expires_in": str(e),
            "expires_on": str(t + e),
            "ext_expires_in": str(e),
            "not_before": str(t - 300),
            "resource": q["resource"],
            "token_type": "Bearer",
        }

    def err(s, status):
        if status == 410 or status == 503:
            return {"error": "service_unavailable", "error_description": "IMDS not ready"}
        if status == 429:
            return {"error": "too_many_requests", "error_description": "Too many requests"}
        return {"error": "unknown", "error_description": "Failed to retrieve token from the Active directory."}

    return scripted(step, ok, err)


# ---------------------------------------------------------------------------------------------
# Azure App Service / Functions (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference)


def azure_app_service(sc, req):
    def bad(status, msg):
        return json_reply(status, {"statusCode": status, "message": msg, "correlationId": new_request_id()},
                          reason=f"app service: {msg}")

    if req.command != "GET":
        return bad(405, "Method not allowed")
    got = req.hdrs.get("x-identity-header")
    if got is None:
        return bad(400, "X-IDENTITY-HEADER header not specified")
    if got != sc["azure_identity_header"]:
        return bad(401, "X-IDENTITY-HEADER does not match")
    q = req.query
    if q.get("api-version") != "2019-08-01":
        return bad(400, f"api-version {q.get('api-version')!r} is not 2019-08-01")
    if not q.get("resource"):
        return bad(400, "resource not specified")
    want = sc["azure_client_id"]
    if q.get("client_id") and want and q["client_id"] != want:
        return bad(400, "Identity not found")
    step = sc.next_step("azure_app_service")

    def ok(s):
        return {
            "access_token": sc["azure_access_token"],
            "expires_on": str(now() + expires_in(s, 86399)),
            "resource": q["resource"],
            "token_type": "Bearer",
            "client_id": want or q.get("client_id") or "00000000-0000-0000-0000-000000000000",
        }

    return scripted(step, ok, lambda s, st: {"statusCode": st, "message": "scripted error",
                                             "correlationId": new_request_id()})


# ---------------------------------------------------------------------------------------------
# Microsoft Entra token endpoint, client credentials with a federated assertion
# (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#third-case-access-token-request-with-a-federated-credential)

JWT_BEARER_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def entra_error(status, error, code, msg):
    t = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return json_reply(status, {
        "error": error,
        "error_description": f"AADSTS{code}: {msg} Trace ID: {new_request_id()} Correlation ID: {new_request_id()} Timestamp: {t}",
        "error_codes": [code],
        "timestamp": t,
        "trace_id": new_request_id(),
        "correlation_id": new_request_id(),
    }, reason=f"entra: {error} AADSTS{code}")


def azure_entra(sc, req, tenant):
    if req.command != "POST":
        return entra_error(400, "invalid_request", 900561, "The endpoint only accepts POST requests.")
    if req.form is None:
        return entra_error(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: 'grant_type'.")
    f = req.form
    if sc["azure_tenant"] and tenant != sc["azure_tenant"]:
        return entra_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    for name in ("grant_type", "client_id", "scope"):
        if not f.get(name):
            return entra_error(400, "invalid_request", 900144,
                               f"The request body must contain the following parameter: '{name}'.")
    if f["grant_type"] != "client_credentials":
        return entra_error(400, "unsupported_grant_type", 70003,
                           "The app requested an unsupported grant type.")
    if not f["scope"].endswith("/.default"):
        return entra_error(400, "invalid_scope", 1002012,
                           f"The provided value for scope {f['scope']} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
    if sc["azure_client_id"] and f["client_id"] != sc["azure_client_id"]:
        return entra_error(400, "unauthorized_client", 700016,
                           f"Application with identifier '{f['client_id']}' was not found in the directory.")
    if f.get("client_assertion_type") != JWT_BEARER_TYPE:
        return entra_error(400, "invalid_request", 7000218,
                           "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
    if not f.get("client_assertion"):
        return entra_error(400, "invalid_request", 7000218,
                           "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
    if f["client_assertion"] != sc["azure_federated_token"]:
        return entra_error(401, "invalid_client", 700211,
                           "No matching federated identity record found for presented assertion issuer.")
    step = sc.next_step("azure_entra")

    def ok(s):
        e = expires_in(s, 3599)
        return {"token_type": "Bearer", "expires_in": e, "ext_expires_in": e,
                "access_token": sc["azure_access_token"]}

    def err(s, status):
        body = json.loads(entra_error(status, "invalid_client" if status < 500 else "temporarily_unavailable",
                                      700024 if status < 500 else 50196, "scripted error").body)
        return body

    return scripted(step, ok, err)


# ---------------------------------------------------------------------------------------------
# GCP metadata server (https://cloud.google.com/compute/docs/metadata/querying-metadata,
# https://cloud.google.com/compute/docs/access/authenticate-workloads#applications)

GCP_SA_PREFIX = "/computeMetadata/v1/instance/service-accounts/"


def gcp_forbidden(req, why):
    body = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
        "  <title>Error 403 (Forbidden)!!1</title>\n"
        f"  <p><b>403.</b> <ins>That\u2019s an error.</ins>\n  <p>Your client does not have "
        f"permission to get URL <code>{xml_escape(req.path_only)}</code> from this server. "
        f"{xml_escape(why)} <ins>That\u2019s all we know.</ins>\n"
    )
    return Reply(403, body, "text/html; charset=UTF-8", {"Metadata-Flavor": "Google"},
                 reason=f"gcp metadata: {why}")


def gcp_metadata(sc, req):
    if req.command != "GET":
        return Reply(405, "Method not allowed\n", "text/plain", {"Metadata-Flavor": "Google"},
                     reason="gcp metadata: method is not GET")
    if "x-forwarded-for" in req.hdrs:
        return gcp_forbidden(req, "Request had X-Forwarded-For header.")
    if req.hdrs.get("metadata-flavor") != "Google":
        return gcp_forbidden(req, "Missing Metadata-Flavor:Google header.")
    account = req.path_only[len(GCP_SA_PREFIX):-len("/token")]
    if account not in ("default", sc["gcp_service_account"]):
        return Reply(404, "Not Found\n", "text/html; charset=UTF-8", {"Metadata-Flavor": "Google"},
                     reason=f"gcp metadata: no service account {account!r}")
    step = sc.next_step("gcp_metadata")

    def ok(s):
        return {"access_token": sc["gcp_access_token"], "expires_in": expires_in(s, 3599),
                "token_type": "Bearer"}

    r = scripted(step, ok, lambda s, st: "error\n", headers={"Metadata-Flavor": "Google"})
    if "content_type" not in step and not 200 <= r.status < 300 and "json" not in step:
        r.ctype = "text/plain; charset=utf-8"
    return r


# ---------------------------------------------------------------------------------------------
# Google OAuth 2.0 token endpoint (https://developers.google.com/identity/protocols/oauth2/service-account#httprest)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def google_error(status, error, desc, reason=None):
    return json_reply(status, {"error": error, "error_description": desc},
                      reason=f"gcp oauth: {reason or desc}")


def verify_rs256(key_spec, signed, signature):
    """True when `signature` is a valid RS256 signature of `signed` by `key_spec` (PEM text or a
    path; a private key is accepted too); via `openssl dgst`."""
    if key_spec and os.path.exists(key_spec):
        with open(key_spec) as fh:
            pem = fh.read()
    else:
        pem = key_spec or ""
    private = "PRIVATE KEY" in pem
    with tempfile.TemporaryDirectory() as d:
        paths = {n: os.path.join(d, n) for n in ("key.pem", "data", "sig")}
        with open(paths["key.pem"], "w") as fh:
            fh.write(pem)
        with open(paths["data"], "wb") as fh:
            fh.write(signed)
        with open(paths["sig"], "wb") as fh:
            fh.write(signature)
        flag = "-prverify" if private else "-verify"
        p = subprocess.run(["openssl", "dgst", "-sha256", flag, paths["key.pem"], "-signature",
                            paths["sig"], paths["data"]], capture_output=True)
        return p.returncode == 0


def gcp_oauth(sc, req, log_extra):
    if req.command != "POST":
        return google_error(405, "invalid_request", "Method not allowed", "method is not POST")
    f = req.form
    if f is None:
        return google_error(400, "invalid_request", "Missing required parameter: grant_type",
                            "body is not application/x-www-form-urlencoded")
    grant = f.get("grant_type")
    if not grant:
        return google_error(400, "invalid_request", "Missing required parameter: grant_type")
    if grant == JWT_BEARER_GRANT:
        bad = check_jwt(sc, req, f.get("assertion"), log_extra)
        if bad:
            return bad
    elif grant == "refresh_token":
        want = sc["gcp_refresh"] or {}
        for name in ("client_id", "client_secret", "refresh_token"):
            if not f.get(name):
                return google_error(400, "invalid_request", f"Missing required parameter: {name}")
        if f["client_id"] != want.get("client_id"):
            return google_error(401, "invalid_client", "The OAuth client was not found.")
        if f["client_secret"] != want.get("client_secret"):
            return google_error(401, "invalid_client", "Unauthorized", "client_secret mismatch")
        if f["refresh_token"] != want.get("refresh_token"):
            return google_error(400, "invalid_grant", "Bad Request", "refresh_token mismatch")
    else:
        return google_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
    step = sc.next_step("gcp_oauth")

    def ok(s):
        return {"access_token": sc["gcp_access_token"], "expires_in": expires_in(s, 3599),
                "token_type": "Bearer"}

    return scripted(step, ok, lambda s, st: {"error": "invalid_grant" if st < 500 else "internal_failure",
                                             "error_description": "scripted error"})


def check_jwt(sc, req, assertion, log_extra):
    def bad(desc, reason=None, error="invalid_grant"):
        return google_error(400, error, desc, reason)

    if not assertion:
        return bad("Missing required parameter: assertion", error="invalid_request")
    parts = assertion.split(".")
    if len(parts) != 3:
        return bad("Invalid JWT: not three parts", "assertion is not header.claims.signature")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        return bad("Invalid JWT: malformed", f"undecodable assertion: {e}")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return bad("Invalid JWT: malformed", "header/claims not JSON objects")
    log_extra["jwt"] = {"header": header, "claims": claims}
    if header.get("alg") != "RS256":
        return bad("Invalid JWT: alg must be RS256", f"alg {header.get('alg')!r}")
    for name in ("iss", "scope", "aud", "iat", "exp"):
        if name not in claims:
            if name == "scope":
                return google_error(400, "invalid_scope", "Empty or missing scope not allowed.",
                                    "no scope claim")
            return bad(f"Invalid JWT: missing claim {name}", f"no {name} claim")
    if not claims["scope"]:
        return google_error(400, "invalid_scope", "Empty or missing scope not allowed.", "empty scope")
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, int) or not isinstance(exp, int) or isinstance(iat, bool) or isinstance(exp, bool):
        return bad("Invalid JWT: iat and exp must be integers", "iat/exp not integers")
    t = now()
    short = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
             "timeframe. Check your iat and exp values in the JWT claim.")
    if exp - iat > 3600:
        return bad(short, f"exp - iat = {exp - iat} > 3600")
    if exp <= iat:
        return bad(short, "exp <= iat")
    if iat > t + 300:
        return bad(short, "iat in the future")
    if exp < t - 300:
        return bad(short, "exp in the past")
    want_aud = sc["gcp_aud"] or f"{req.server.scheme}://{req.hdrs.get('host', '')}{req.path_only}"
    if claims["aud"] != want_aud:
        return bad("Invalid JWT: aud mismatch", f"aud {claims['aud']!r} != {want_aud!r}")
    if sc["gcp_client_email"] and claims["iss"] != sc["gcp_client_email"]:
        return bad("Invalid grant: account not found", f"iss {claims['iss']!r} unknown")
    if not sc["gcp_public_key"]:
        return bad("Invalid JWT Signature.", "scenario has no gcp_public_key")
    signed = (parts[0] + "." + parts[1]).encode("ascii")
    if not verify_rs256(sc["gcp_public_key"], signed, signature):
        return bad("Invalid JWT Signature.", "RS256 signature does not verify")
    return None


# ---------------------------------------------------------------------------------------------
# HTTP plumbing.

ENTRA_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
GCP_TOKEN_RE = re.compile(r"^/computeMetadata/v1/instance/service-accounts/[^/]+/token$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin"
    sys_version = ""

    def setup(self):
        if self.server.tls is not None:
            self.request.settimeout(10)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # quiet; the JSONL log is the record
        pass

    def do_any(self):
        self.hdrs = {}
        for k, v in self.headers.items():
            k = k.lower()
            self.hdrs[k] = f"{self.hdrs[k]}, {v}" if k in self.hdrs else v
        split = urllib.parse.urlsplit(self.path)
        self.path_only = split.path
        self.query = flat(urllib.parse.parse_qs(split.query, keep_blank_values=True))
        length = int(self.headers.get("content-length") or 0)
        self.body = self.rfile.read(length) if length > 0 else b""
        ctype = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        self.form = None
        if ctype == "application/x-www-form-urlencoded":
            self.form = flat(urllib.parse.parse_qs(self.body.decode("utf-8", "replace"),
                                                   keep_blank_values=True))
        extra = {}
        endpoint, reply = self.route(extra)
        entry = {
            "method": self.command,
            "path": self.path_only,
            "query": self.query,
            "headers": self.hdrs,
        }
        if self.form is not None:
            entry["form"] = self.form
        elif self.body:
            entry["body"] = self.body.decode("utf-8", "replace")
        entry["status"] = reply.status
        entry["endpoint"] = endpoint
        if reply.reason:
            entry["reason"] = reply.reason
        entry.update(extra)
        entry["time"] = round(time.time(), 3)
        self.server.write_log(entry)
        if reply.delay_ms:
            time.sleep(reply.delay_ms / 1000)
        if reply.drop:
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.ctype)
        for k, v in reply.headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_any

    def route(self, extra):
        sc, p = self.server.scenario, self.path_only
        if p == "/latest/api/token":
            return "imds_token", self.server.imds.put_token(self)
        if p.startswith(IMDS_CREDS_PREFIX) and "/" not in p[len(IMDS_CREDS_PREFIX):]:
            which = "imds_role_list" if p == IMDS_CREDS_PREFIX else "imds_role_creds"
            return which, self.server.imds.get(self)
        paths = sc["container_path"]
        if p in ([paths] if isinstance(paths, str) else paths):
            return "container_creds", container_creds(sc, self)
        if p == "/":
            return "sts", sts(sc, self)
        if p == "/metadata/identity/oauth2/token":
            return "azure_imds", azure_imds(sc, self)
        if p == "/msi/token":
            return "azure_app_service", azure_app_service(sc, self)
        m = ENTRA_RE.match(p)
        if m:
            return "azure_entra", azure_entra(sc, self, m.group(1))
        if GCP_TOKEN_RE.match(p):
            scopes = self.query.get("scopes")
            if isinstance(scopes, list):
                scopes = ",".join(scopes)
            extra["scopes"] = scopes.split(",") if scopes else []
            return "gcp_metadata", gcp_metadata(sc, self)
        if p == "/token":
            return "gcp_oauth", gcp_oauth(sc, self, extra)
        return None, Reply(404, "Not Found\n", "text/plain", reason="unknown path")


def flat(parsed):
    """parse_qs's lists: one value → the string, repeated → the list."""
    return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, scenario, log_path, tls):
        super().__init__(("127.0.0.1", port), Handler)
        self.scenario = scenario
        self.imds = Imds(scenario)
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a", encoding="utf-8")
        self.tls = tls
        self.scheme = "https" if tls else "http"

    def write_log(self, entry):
        line = json.dumps(entry, sort_keys=False)
        with self.log_lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def handle_error(self, request, client_address):  # TLS handshake failures, resets
        print(f"standin: error serving {client_address}: {sys.exc_info()[1]!r}",
              file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()
    with open(a.scenario, encoding="utf-8") as fh:
        scenario = Scenario(json.load(fh))
    tls = None
    if a.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls[0], a.tls[1])
    server = Server(a.port, scenario, a.log, tls)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
