"""celeriac-webhooks: HTTP for celeriac.

URL tasks (:func:`send_url`, :func:`url_signature`, ``celeriac call-url``) that a worker
requests, storing the response as the result; HMAC-SHA256 signed requests
(:func:`sign`, :func:`verify`); and webhook event sinks (``[webhooks.sinks.NAME]``).
Importing this module starts, opens and registers nothing; httpx is imported on first use.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac_webhooks._config import SECTION
from celeriac_webhooks._config import SinkConfig
from celeriac_webhooks._config import WebhooksConfig
from celeriac_webhooks._errors import SignatureError
from celeriac_webhooks._errors import WebhookConnectionError
from celeriac_webhooks._errors import WebhookError
from celeriac_webhooks._errors import WebhookHTTPError
from celeriac_webhooks._errors import WebhookRefusedError
from celeriac_webhooks._hooks import celeriac_add_cli_commands
from celeriac_webhooks._hooks import celeriac_add_config_sections
from celeriac_webhooks._hooks import celeriac_add_event_sinks
from celeriac_webhooks._hooks import celeriac_app_configured
from celeriac_webhooks._hooks import make_sinks
from celeriac_webhooks._safety import check_url
from celeriac_webhooks._signing import SIGNATURE_HEADER
from celeriac_webhooks._signing import sign
from celeriac_webhooks._signing import verify
from celeriac_webhooks._sink import WebhookSink
from celeriac_webhooks._task import SECRET_HEADER
from celeriac_webhooks._task import TASK_NAME
from celeriac_webhooks._task import register
from celeriac_webhooks._task import retry_after
from celeriac_webhooks._task import send_url
from celeriac_webhooks._task import url_signature

try:
    __version__ = _version("celeriac-webhooks")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "SECRET_HEADER",
    "SECTION",
    "SIGNATURE_HEADER",
    "TASK_NAME",
    "SignatureError",
    "SinkConfig",
    "WebhookConnectionError",
    "WebhookError",
    "WebhookHTTPError",
    "WebhookRefusedError",
    "WebhookSink",
    "WebhooksConfig",
    "__version__",
    "celeriac_add_cli_commands",
    "celeriac_add_config_sections",
    "celeriac_add_event_sinks",
    "celeriac_app_configured",
    "check_url",
    "make_sinks",
    "register",
    "retry_after",
    "send_url",
    "sign",
    "url_signature",
    "verify",
]
