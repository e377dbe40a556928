"""Settings from the environment, validated once per instance.

`load_settings` reads what every entry point needs; `load_webhook_settings` what only a webhook
function needs (how callers are authenticated, where links go), `load_events_settings` what only
the events function needs (where dead letters go): neither is refused for a setting it never
uses. An empty variable counts as unset. A problem is a `ConfigError` (500 `MISCONFIGURED`)
naming the setting and never echoing its value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from function.auth.authenticator import SIGNING_MODES, WEBHOOK_AUTH_MODES, AuthMode
from function.auth.hmac_sha256 import DEFAULT_SIGNATURE_HEADER
from function.clients.credentials import ApiToken, make_token
from function.core.links import LinkPolicy, is_table_link_id
from function.core.mapping import LinkMapping, parse_link_mapping
from function.model.errors import ConfigError, MappingError

# Where the HTTP function sends its links: to Tulip at once, or to Pub/Sub for the events function.
Delivery = Literal["direct", "queue"]
DELIVERIES: tuple[Delivery, ...] = get_args(Delivery)
_SECRET_NAME = re.compile(
    r"(?:projects/(?P<project>[a-z0-9][a-z0-9.:-]*)/secrets/)?(?P<secret>[A-Za-z0-9_-]{1,255})"
    r"(?:/versions/(?P<version>latest|[1-9][0-9]*))?"
)
_TOPIC_NAME = re.compile(
    r"(?:projects/(?P<project>[a-z0-9][a-z0-9.:-]*)/topics/)?(?P<topic>[A-Za-z][A-Za-z0-9\-_.~+%]{2,254})"
)
_SENDER_NAME = re.compile(r"[a-z][a-z0-9-]{0,29}")
_DATABASE_NAME = re.compile(
    r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/databases/(?:\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])"
)
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
_ORIGIN = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?")
_HOST_PORT = re.compile(r"[A-Za-z0-9.\-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}")


def _invalid(message: str) -> PydanticCustomError:
    # Our words, not pydantic's: `_describe` puts the setting's name in front.
    return PydanticCustomError("setting", message)


def _base_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise _invalid("is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _invalid("must be an absolute URL such as https://acme.tulip.co")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise _invalid("must use https (plain http is allowed only for a loopback host)")
    if parts.username is not None or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise _invalid(
            "must be only the instance's scheme and host, e.g. https://acme.tulip.co "
            "(no path, query, fragment or credentials)",
        )
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _workspace(value: str) -> str:
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise _invalid("must not contain spaces or control characters")
    return value


def _link_id(value: str) -> str:
    if not is_table_link_id(value):
        raise _invalid("must be at most 64 of the characters A-Z, a-z, 0-9 and _")
    return value


def _link_ids(value: str) -> frozenset[str]:
    ids = frozenset(part.strip() for part in value.split(",") if part.strip())
    if not ids:
        raise _invalid("must list at least one table link id, comma-separated")
    for link_id in ids:
        _link_id(link_id)
    return ids


def _secret_name(value: str) -> str:
    if not _SECRET_NAME.fullmatch(value):
        raise _invalid(
            "must be projects/P/secrets/S/versions/V, projects/P/secrets/S or a secret id S",
        )
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise _invalid("must be an HTTP header name, e.g. X-Hub-Signature-256")
    return value


def _origins(value: str) -> frozenset[str]:
    origins = frozenset(part.strip().lower() for part in value.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise _invalid(
                "must list host names (eventgrid.azure.net, a SAP Event Mesh host), "
                "comma-separated, or * for any"
            )
    return origins


def _auth_mode(value: Any) -> Any:
    # Our wording rather than pydantic's list of literals.
    if value not in WEBHOOK_AUTH_MODES:
        raise _invalid(f"must be one of: {', '.join(WEBHOOK_AUTH_MODES)}")
    return value


def _link_mapping(value: str) -> LinkMapping:
    try:
        return parse_link_mapping(value)
    except MappingError as error:
        raise _invalid(str(error)) from None


def _delivery(value: Any) -> Any:
    if value not in DELIVERIES:
        raise _invalid(f"must be one of: {', '.join(DELIVERIES)}")
    return value


def _topic_name(value: str) -> str:
    match = _TOPIC_NAME.fullmatch(value)
    if match is None or match["topic"].startswith("goog"):
        raise _invalid(
            "must be projects/P/topics/T or a topic id T (3 to 255 of the characters A-Z, a-z, "
            "0-9, - _ . ~ + %, starting with a letter and not with goog)"
        )
    return value


def _database_name(value: str) -> str:
    if not _DATABASE_NAME.fullmatch(value):
        raise _invalid("must be a Firestore database's name: projects/P/databases/D")
    return value


def _sender_name(value: str) -> str:
    if not _SENDER_NAME.fullmatch(value):
        raise _invalid("must be a short name: a lower-case letter, then letters, digits or -")
    return value


def _host_port(value: str) -> str:
    if not _HOST_PORT.fullmatch(value):
        raise _invalid("must be host:port, e.g. localhost:8085")
    return value


class Settings(BaseModel):
    """Everything the link function needs, whatever the entry point."""

    # arbitrary types: LINK_MAPPING is held compiled, as our own LinkMapping.
    model_config = ConfigDict(
        frozen=True, extra="ignore", hide_input_in_errors=True, arbitrary_types_allowed=True
    )

    tulip_base_url: Annotated[str, AfterValidator(_base_url)] = Field(alias="TULIP_BASE_URL")
    workspace_id: Annotated[str | None, AfterValidator(_workspace)] = Field(
        None, alias="TULIP_WORKSPACE_ID"
    )
    default_table_link_id: Annotated[str | None, AfterValidator(_link_id)] = Field(
        None, alias="TULIP_TABLE_LINK_ID"
    )
    allowed_table_link_ids: Annotated[frozenset[str] | None, BeforeValidator(_link_ids)] = Field(
        None, alias="TULIP_ALLOWED_TABLE_LINK_IDS"
    )
    credentials_secret: Annotated[str | None, AfterValidator(_secret_name)] = Field(
        None, alias="TULIP_CREDENTIALS_SECRET"
    )
    api_key: SecretStr | None = Field(None, alias="TULIP_API_KEY")
    api_secret: SecretStr | None = Field(None, alias="TULIP_API_SECRET")
    secret_cache_ttl: Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)] = Field(
        300.0, alias="SECRET_CACHE_TTL_SECONDS"
    )
    secret_manager_emulator_host: Annotated[str | None, AfterValidator(_host_port)] = Field(
        None, alias="SECRET_MANAGER_EMULATOR_HOST"
    )
    timeout: Annotated[float, Field(gt=0, le=3_600, allow_inf_nan=False)] = Field(
        10.0, alias="TULIP_TIMEOUT_SECONDS"
    )
    deadline: Annotated[float, Field(gt=0, le=3_600, allow_inf_nan=False)] = Field(
        30.0, alias="TULIP_DEADLINE_SECONDS"
    )
    max_attempts: Annotated[int, Field(ge=1, le=10)] = Field(4, alias="TULIP_MAX_ATTEMPTS")
    max_body_bytes: Annotated[int, Field(ge=1, le=32 * 1024 * 1024)] = Field(
        65_536, alias="MAX_BODY_BYTES"
    )
    link_mapping: Annotated[LinkMapping | None, BeforeValidator(_link_mapping)] = Field(
        None, alias="LINK_MAPPING"
    )
    max_batch_links: Annotated[int, Field(ge=1, le=1_000)] = Field(50, alias="MAX_BATCH_LINKS")
    batch_concurrency: Annotated[int, Field(ge=1, le=32)] = Field(
        4, alias="TULIP_BATCH_CONCURRENCY"
    )
    project: str | None = Field(None, alias="GOOGLE_CLOUD_PROJECT")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        allowed, default = self.allowed_table_link_ids, self.default_table_link_id
        if allowed is not None and default is not None and default not in allowed:
            raise _invalid("TULIP_TABLE_LINK_ID is not one of TULIP_ALLOWED_TABLE_LINK_IDS")
        mapping = self.link_mapping
        if mapping is not None and default is None and not mapping.has_table_link_id():
            raise _invalid(
                "LINK_MAPPING gives no tableLinkId (in every rule) and TULIP_TABLE_LINK_ID is not "
                "set: say in one of them which table link to change",
            )
        given = (self.api_key is not None, self.api_secret is not None)
        if self.credentials_secret is None and given in ((True, False), (False, True)):
            raise _invalid("TULIP_API_KEY and TULIP_API_SECRET go together: set both, or neither")
        _check_project("TULIP_CREDENTIALS_SECRET", self.credentials_secret, self.project)
        return self

    @property
    def policy(self) -> LinkPolicy:
        """What links the settings allow."""
        return LinkPolicy(
            self.default_table_link_id, self.allowed_table_link_ids, self.max_batch_links
        )

    @property
    def credentials_secret_version(self) -> str | None:
        """`TULIP_CREDENTIALS_SECRET` as a full secret version name."""
        return secret_version_name(self.credentials_secret, self.project)

    @property
    def has_token(self) -> bool:
        """Whether a Tulip API token is configured: a function that calls Tulip needs one; a
        webhook function in queue mode may have none (its dry runs then do not ask Tulip)."""
        return self.credentials_secret is not None or self.api_key is not None

    def require_token(self) -> None:
        """`ConfigError` unless a Tulip API token is configured: for a function that calls
        Tulip, so that it refuses every request, as for any other setting."""
        if not self.has_token:
            raise ConfigError(
                "Invalid settings: TULIP_CREDENTIALS_SECRET is not set: set it to the Secret "
                "Manager secret holding the Tulip API token (or, for local runs, set "
                "TULIP_API_KEY and TULIP_API_SECRET)"
            )

    def api_token(self) -> ApiToken | None:
        """The token given as `TULIP_API_KEY`/`TULIP_API_SECRET`, used only when
        `TULIP_CREDENTIALS_SECRET` is unset; `ConfigError` when it is not a usable token."""
        if self.credentials_secret is not None or self.api_key is None:
            return None
        assert self.api_secret is not None, "checked above: the two go together"
        return make_token(
            self.api_key.get_secret_value(),
            self.api_secret.get_secret_value(),
            "TULIP_API_KEY/TULIP_API_SECRET",
        )


class WebhookSettings(BaseModel):
    """How HTTP callers are authenticated, and where their links go (the HTTP entry point
    only): to Tulip at once (`direct`), or to Pub/Sub for the events function (`queue`)."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    mode: Annotated[AuthMode | None, BeforeValidator(_auth_mode)] = Field(
        None, alias="WEBHOOK_AUTH"
    )
    secret: Annotated[str | None, AfterValidator(_secret_name)] = Field(
        None, alias="WEBHOOK_SECRET"
    )
    secret_value: SecretStr | None = Field(None, alias="WEBHOOK_SECRET_VALUE")
    tolerance: Annotated[int, Field(ge=1, le=86_400)] = Field(
        300, alias="WEBHOOK_TOLERANCE_SECONDS"
    )
    signature_header: Annotated[str, AfterValidator(_header_name)] = Field(
        DEFAULT_SIGNATURE_HEADER, alias="WEBHOOK_SIGNATURE_HEADER"
    )
    token_header: Annotated[str | None, AfterValidator(_header_name)] = Field(
        None, alias="WEBHOOK_TOKEN_HEADER"
    )
    allowed_origins: Annotated[frozenset[str], BeforeValidator(_origins)] = Field(
        frozenset(), alias="WEBHOOK_ALLOWED_ORIGINS"
    )
    delivery: Annotated[Delivery, BeforeValidator(_delivery)] = Field(
        "direct", alias="WEBHOOK_DELIVERY"
    )
    queue_topic: Annotated[str | None, AfterValidator(_topic_name)] = Field(
        None, alias="WEBHOOK_QUEUE_TOPIC"
    )
    publish_timeout: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = Field(
        2.0, alias="WEBHOOK_PUBLISH_TIMEOUT_SECONDS"
    )
    sender: Annotated[str | None, AfterValidator(_sender_name)] = Field(
        None, alias="WEBHOOK_SENDER"
    )
    # Each delivery applied once (core/deliveries.py): unset, nothing is remembered.
    dedup_database: Annotated[str | None, AfterValidator(_database_name)] = Field(
        None, alias="DEDUP_DATABASE"
    )
    # 7 days: longer than every retry schedule senders document (Stripe's, the longest of the
    # common ones, retries for 3 days; Standard Webhooks senders such as Svix for about 1.5).
    dedup_window: Annotated[int, Field(ge=60, le=30 * 86_400)] = Field(
        7 * 86_400, alias="DEDUP_WINDOW_SECONDS"
    )
    project: str | None = Field(None, alias="GOOGLE_CLOUD_PROJECT")

    @model_validator(mode="after")
    def _complete(self) -> WebhookSettings:
        modes = ", ".join(WEBHOOK_AUTH_MODES)
        if self.mode is None:
            # Fail closed: a forgotten setting must not leave a public endpoint open.
            raise _invalid(
                f"WEBHOOK_AUTH is not set: every HTTP request is refused until it says how "
                f"callers are authenticated (one of: {modes})",
            )
        if self.mode in SIGNING_MODES and self.secret is None and self.secret_value is None:
            raise _invalid(
                f"WEBHOOK_AUTH={self.mode} needs a secret: set WEBHOOK_SECRET to its Secret "
                "Manager secret (or, for local runs, WEBHOOK_SECRET_VALUE)",
            )
        _check_project("WEBHOOK_SECRET", self.secret, self.project)
        if self.token_header is not None and self.mode != "token":
            # Set for another mode it would be silently unread: the sender's token never checked.
            raise _invalid(
                f"WEBHOOK_TOKEN_HEADER is read only with WEBHOOK_AUTH=token, not {self.mode}: "
                "unset it, or set WEBHOOK_AUTH=token"
            )
        if self.delivery == "queue" and self.queue_topic is None:
            raise _invalid(
                "WEBHOOK_DELIVERY=queue needs WEBHOOK_QUEUE_TOPIC: the Pub/Sub topic the links "
                "go to (projects/P/topics/T, or T with GOOGLE_CLOUD_PROJECT)"
            )
        _check_topic_project("WEBHOOK_QUEUE_TOPIC", self.queue_topic, self.project)
        return self

    @property
    def secret_version(self) -> str | None:
        """`WEBHOOK_SECRET` as a full secret version name."""
        return secret_version_name(self.secret, self.project)

    @property
    def topic_name(self) -> str | None:
        """`WEBHOOK_QUEUE_TOPIC` as `projects/P/topics/T`."""
        return topic_path(self.queue_topic, self.project)


class EventsSettings(BaseModel):
    """The events function's own settings: where a message that needs a person goes, and how long
    a link to a record Tulip does not know is retried."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    dead_letter_topic: Annotated[str | None, AfterValidator(_topic_name)] = Field(
        None, alias="DEAD_LETTER_TOPIC"
    )
    not_found_retry: Annotated[float, Field(ge=0, le=7 * 86_400, allow_inf_nan=False)] = Field(
        3600.0, alias="TULIP_NOT_FOUND_RETRY_SECONDS"
    )
    project: str | None = Field(None, alias="GOOGLE_CLOUD_PROJECT")

    @model_validator(mode="after")
    def _complete(self) -> EventsSettings:
        _check_topic_project("DEAD_LETTER_TOPIC", self.dead_letter_topic, self.project)
        return self

    @property
    def dead_letter_topic_name(self) -> str | None:
        """`DEAD_LETTER_TOPIC` as `projects/P/topics/T` (None: unset)."""
        return topic_path(self.dead_letter_topic, self.project)


def topic_path(name: str | None, project: str | None) -> str | None:
    """A topic setting as `projects/P/topics/T`: a bare id takes `project`. None when unset, or
    when a bare id has no project."""
    match = _TOPIC_NAME.fullmatch(name or "")
    if match is None or (match["project"] or project) is None:
        return None
    return f"projects/{match['project'] or project}/topics/{match['topic']}"


def _check_topic_project(setting: str, name: str | None, project: str | None) -> None:
    if name is not None and topic_path(name, project) is None:
        raise _invalid(
            f"{setting} is a bare topic id, which needs GOOGLE_CLOUD_PROJECT to be set (or give "
            "projects/P/topics/T)"
        )


def secret_version_name(name: str | None, project: str | None) -> str | None:
    """A secret setting as `projects/P/secrets/S/versions/V`: a bare id takes `project`, a name
    without a version takes `latest`. None when unset, or when a bare id has no project."""
    match = _SECRET_NAME.fullmatch(name or "")
    if match is None or (match["project"] or project) is None:
        return None
    return (
        f"projects/{match['project'] or project}/secrets/{match['secret']}"
        f"/versions/{match['version'] or 'latest'}"
    )


def _check_project(setting: str, name: str | None, project: str | None) -> None:
    if name is not None and secret_version_name(name, project) is None:
        raise _invalid(
            f"{setting} is a bare secret id, which needs GOOGLE_CLOUD_PROJECT to be set "
            "(or give projects/P/secrets/S)",
        )


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate the settings every entry point needs."""
    return _load(Settings, environ)


def load_webhook_settings(environ: Mapping[str, str]) -> WebhookSettings:
    """Validate the HTTP caller authentication settings. Unset `WEBHOOK_AUTH` refuses all."""
    return _load(WebhookSettings, environ)


def load_events_settings(environ: Mapping[str, str]) -> EventsSettings:
    """Validate the events function's own settings."""
    return _load(EventsSettings, environ)


def environment_variables() -> frozenset[str]:
    """Every variable this module reads (for checks that the deployment sets real names)."""
    return frozenset(
        field.alias
        for model in (Settings, WebhookSettings, EventsSettings)
        for field in model.model_fields.values()
        if field.alias
    )


_Model = TypeVar("_Model", bound=BaseModel)


def _load(model: type[_Model], environ: Mapping[str, str]) -> _Model:
    present = {k: v.strip() for k, v in environ.items() if v.strip()}
    names = {field.alias for field in model.model_fields.values()}
    try:
        return model.model_validate({k: v for k, v in present.items() if k in names})
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        name = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"]
        if item["type"] == "missing":
            problems.append(f"{name} is not set")
        elif not name or message.startswith(name):  # ours, already naming the setting
            problems.append(message)
        else:
            problems.append(f"{name}: {message[:1].lower()}{message[1:]}")
    return "Invalid settings: " + "; ".join(problems)
