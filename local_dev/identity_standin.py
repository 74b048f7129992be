"""LOCAL STAND-INS for Microsoft Entra ID and App Service's managed identity endpoint. Tests only.

They let the real azure-identity and MSAL run the secretless cross-tenant flow end to end:

1. The app's managed identity asks the **managed identity endpoint** (App Service's protocol:
   `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...` with `X-IDENTITY-HEADER`) for a
   token with audience `api://AzureADTokenExchange`.
2. It presents that token as the client assertion of a multi-tenant app registration to the
   **Entra token endpoint** of the other tenant (`POST /{tenant}/oauth2/v2.0/token`, client
   credentials). Entra accepts it only if the app has a federated identity credential matching
   the assertion's issuer, subject and audience, and a service principal in that tenant.
3. Entra answers an ARM token carrying that tenant in `tid`; ARM (the ADF stand-in) checks it.

Both sign tokens with one `TokenIssuer` (RS256; in Azure the managed identity's tokens come
from Entra too), whose public key the ADF stand-in uses to verify what it is given. The Entra
stand-in serves https (MSAL requires it) and answers what MSAL asks: OpenID metadata per
tenant, instance discovery, keys, and the token endpoint, with Entra's error codes (AADSTS...).
"""

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local_dev.keep_alive import QuietKeepAliveHandler
from local_dev.service import ServedInThread

EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
V1_ISSUER = "https://sts.windows.net"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class InvalidToken(ValueError):
    """A token that does not verify; `code` says how (expired, wrong audience, bad signature, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class TokenIssuer:
    """Signs and verifies JWTs the way Entra ID does (RS256, a key id, iss/aud/exp/tid/oid claims)."""

    def __init__(self, authority: str = ""):
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.authority = authority.rstrip("/")  # set once the Entra stand-in knows its URL
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def issuer_for(self, tenant: str) -> str:
        return f"{self.authority}/{tenant}/v2.0"

    def issue(self, *, tenant: str, audience: str, subject: str, app_id: str, lifetime: int = 3600,
              version: str = "2.0") -> str:
        """A token of Entra's v2.0 or v1.0 shape: which one a resource gets is the resource's choice
        (Azure Storage and ARM take v1.0 tokens, issued by https://sts.windows.net/<tenant>/; the
        token exchange audience takes v2.0)."""
        import jwt

        now = int(time.time())
        issuer = self.issuer_for(tenant) if version == "2.0" else f"{V1_ISSUER}/{tenant}/"
        claims = {"iss": issuer, "aud": audience, "sub": subject, "oid": subject, "tid": tenant,
                  "appid": app_id, "azp": app_id, "iat": now, "nbf": now, "exp": now + lifetime,
                  "uti": uuid.uuid4().hex, "ver": version}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, *, audience: str | None = None) -> dict:
        """The token's claims if its signature, times and audience hold; else InvalidToken."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid:
                raise InvalidToken("InvalidAuthenticationToken", "The token was not signed by a known key.")
            options = {"verify_aud": audience is not None, "require": ["exp", "iss", "tid", "aud"]}
            return jwt.decode(token, self._key.public_key(), algorithms=["RS256"], audience=audience,
                              options=options, leeway=30)
        except jwt.ExpiredSignatureError:
            raise InvalidToken("ExpiredAuthenticationToken", "The access token expiry UTC time is in the past.") \
                from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("InvalidAuthenticationTokenAudience",
                               f"The access token has been obtained for wrong audience or resource. It should "
                               f"exactly match one of the allowed audiences '{audience}'.") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken("InvalidAuthenticationToken", f"The access token is invalid: {exc}.") from None

    def jwks(self) -> dict:
        from jwt.algorithms import RSAAlgorithm

        key = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**key, "kid": self.kid, "use": "sig", "alg": "RS256"}]}


class _Server(ServedInThread):
    """A werkzeug server in a thread; subclasses define `_map` and `_handle_<endpoint>`."""

    _map: Map

    def __init__(self, ssl_context=None):
        self._ssl_context = ssl_context
        self._server = self._thread = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_port}"

    def start(self):
        # Connections kept open between requests, as the services keep them.
        self.serve_in_thread(make_server("127.0.0.1", 0, self._app, threaded=True,
                                         request_handler=QuietKeepAliveHandler, ssl_context=self._ssl_context))
        return self


    @Request.application
    def _app(self, request):
        from werkzeug.exceptions import HTTPException

        try:
            endpoint, args = self._map.bind_to_environ(request.environ).match()
        except HTTPException as error:
            return _json({"error": "not_found", "error_description": error.description}, error.code)
        return getattr(self, f"_handle_{endpoint}")(request, **args)


def _json(body, status=200, headers=None):
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json; charset=utf-8")


class ManagedIdentityStandin(_Server):
    """App Service's managed identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER, api-version 2019-08-01).

    The system-assigned identity is `object_id`; `user_assigned` maps client ids to object ids.
    """

    _map = Map([Rule("/msi/token", methods=["GET"], endpoint="token")])

    def __init__(self, issuer: TokenIssuer, *, tenant: str, object_id: str, client_id: str,
                 user_assigned: dict | None = None):
        super().__init__()
        self.issuer, self.tenant = issuer, tenant
        self.object_id, self.client_id = object_id, client_id
        self.user_assigned = dict(user_assigned or {})
        self.secret = uuid.uuid4().hex
        self.requests: list[dict] = []

    @property
    def endpoint(self) -> str:
        return f"{self.url}/msi/token"

    def _handle_token(self, request):
        if request.headers.get("X-IDENTITY-HEADER") != self.secret:
            return _json({"statusCode": 401, "message": "Unauthorized request: X-IDENTITY-HEADER is missing or "
                                                        "wrong."}, 401)
        if request.args.get("api-version") != "2019-08-01":
            return _json({"statusCode": 400, "message": "api-version must be 2019-08-01."}, 400)
        resource, client_id = request.args.get("resource"), request.args.get("client_id")
        if not resource:
            return _json({"statusCode": 400, "message": "resource is required."}, 400)
        if client_id is not None and client_id not in self.user_assigned:
            return _json({"statusCode": 400, "message": f"No managed identity with client id {client_id} is "
                                                        "assigned to this app."}, 400)
        subject = self.user_assigned[client_id] if client_id else self.object_id
        with self._lock:
            self.requests.append({"resource": resource, "client_id": client_id})
        # A managed identity's token for a resource such as Storage or ARM is a v1.0 token; the
        # one for the token exchange (a federated credential's proof) is v2.0.
        token = self.issuer.issue(tenant=self.tenant, audience=resource, subject=subject,
                                  app_id=client_id or self.client_id,
                                  version="2.0" if resource == EXCHANGE_AUDIENCE else "1.0")
        return _json({"access_token": token, "expires_on": str(int(time.time()) + 3600), "resource": resource,
                      "token_type": "Bearer", "client_id": client_id or self.client_id})


@dataclass
class AppRegistration:
    """A multi-tenant app registration: its federated credentials, and the tenants it has a
    service principal in (where an administrator consented)."""

    client_id: str
    federated: list = field(default_factory=list)  # (issuer, subject, audience)
    tenants: set = field(default_factory=set)


class EntraStandin(_Server):
    """The Entra ID endpoints MSAL uses for the client-credentials grant with a client assertion."""

    _map = Map([
        Rule("/common/discovery/instance", methods=["GET"], endpoint="instance_discovery"),
        Rule("/<tenant>/v2.0/.well-known/openid-configuration", methods=["GET"], endpoint="openid"),
        Rule("/<tenant>/discovery/v2.0/keys", methods=["GET"], endpoint="keys"),
        Rule("/<tenant>/oauth2/v2.0/token", methods=["POST"], endpoint="token"),
    ])

    def __init__(self, issuer: TokenIssuer, ssl_context, tenants):
        super().__init__(ssl_context)
        self.issuer = issuer
        self.tenants = set(tenants)
        self.apps: dict[str, AppRegistration] = {}
        self.exchanges: list[dict] = []  # every token request: tenant, client id, scope, outcome
        self.discovery_requests = 0

    def start(self):
        super().start()
        self.issuer.authority = self.url
        return self

    def register(self, app: AppRegistration) -> None:
        self.apps[app.client_id] = app

    def _handle_instance_discovery(self, request):
        with self._lock:
            self.discovery_requests += 1
        # MSAL names the authority by host only (without the port): https://127.0.0.1/{tenant}/oauth2/...
        endpoint = urlsplit(request.args.get("authorization_endpoint", ""))
        parts = endpoint.path.split("/")
        tenant = parts[1] if endpoint.hostname in ("127.0.0.1", "localhost") and len(parts) > 2 else None
        if tenant not in self.tenants:
            return _json({"error": "invalid_instance", "error_description": "AADSTS50049: Unknown or invalid "
                                                                            "instance."}, 400)
        return _json({"tenant_discovery_endpoint": f"{self.url}/{tenant}/v2.0/.well-known/openid-configuration",
                      "api-version": "1.1",
                      "metadata": [{"preferred_network": "127.0.0.1", "preferred_cache": "127.0.0.1",
                                    "aliases": ["127.0.0.1"]}]})

    def _unknown_tenant(self, tenant):
        return _json({"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant}' not found. "
                      "Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
                      "error_codes": [90002]}, 400)

    def _handle_openid(self, request, tenant):
        if tenant not in self.tenants:
            return self._unknown_tenant(tenant)
        base = f"{self.url}/{tenant}"
        return _json({"issuer": self.issuer.issuer_for(tenant), "token_endpoint": f"{base}/oauth2/v2.0/token",
                      "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                      "jwks_uri": f"{base}/discovery/v2.0/keys", "tenant_region_scope": "EU",
                      "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                                "client_secret_basic"],
                      "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                      "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"]})

    def _handle_keys(self, request, tenant):
        return _json(self.issuer.jwks())

    def _handle_token(self, request, tenant):
        form = {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
        client_id, scope = form.get("client_id"), form.get("scope", "")
        record = {"tenant": tenant, "client_id": client_id, "scope": scope, "grant_type": form.get("grant_type")}

        def refuse(error, code, message, status=400):
            record["outcome"] = f"AADSTS{code}"
            with self._lock:
                self.exchanges.append(record)
            return _json({"error": error, "error_description": f"AADSTS{code}: {message}", "error_codes": [code],
                          "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                          "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}, status)

        if tenant not in self.tenants:
            return self._unknown_tenant(tenant)
        if form.get("grant_type") != "client_credentials":
            return refuse("unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return refuse("invalid_client", 7000218, "The request body must contain the following parameter: "
                                                     "'client_assertion' or 'client_secret'.", 401)
        app = self.apps.get(client_id)
        try:
            claims = self.issuer.verify(form["client_assertion"], audience=None)
        except InvalidToken as bad:
            return refuse("invalid_client", 700027, f"Client assertion failed signature validation: {bad}", 401)
        record["assertion"] = {key: claims.get(key) for key in ("iss", "sub", "aud", "tid")}
        if app is None:
            return refuse("unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found "
                                                         f"in the directory '{tenant}'.")
        presented = (claims.get("iss"), claims.get("sub"), claims.get("aud"))
        if presented not in [tuple(fic) for fic in app.federated]:
            return refuse("invalid_client", 70021, "No matching federated identity record found for presented "
                                                   f"assertion. Assertion Issuer: '{presented[0]}'. Assertion "
                                                   f"Subject: '{presented[1]}'. Assertion Audience: '{presented[2]}'.",
                          401)
        if tenant not in app.tenants:
            return refuse("unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found "
                                                         f"in the directory '{tenant}'. This can happen if the "
                                                         "application has not been installed by the administrator of "
                                                         "the tenant or consented to by any user in the tenant.")
        if not scope.endswith("/.default"):
            return refuse("invalid_scope", 1002012, "The provided value for scope is not valid. Client credential "
                                                    "flows must have a scope value with /.default suffixed.")
        resource = scope[: -len("/.default")]
        principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{client_id}"))
        token = self.issuer.issue(tenant=tenant, audience=resource, subject=principal, app_id=client_id)
        record["outcome"] = "issued"
        with self._lock:
            self.exchanges.append(record)
        return _json({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})


def claims_of(token: str) -> dict:
    """A JWT's claims, unverified (for tests that look at what was sent)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
