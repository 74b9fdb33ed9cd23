"""OpenAI's admin API as a provider: the usage and costs reader (``AdminClient``), the
controls writer (``Controls``), and nothing budget-specific."""

from budgetguard.providers.openai.client import AUTH_HELP, AdminClient, ClientStats
from budgetguard.providers.openai.control_objects import (
    HOSTED_TOOLS,
    RATE_LIMIT_FIELDS,
    AlertChannel,
    HostedTools,
    ModelPermissions,
    Project,
    RateLimit,
    SpendAlert,
    SpendLimit,
    cents,
    dollars,
)
from budgetguard.providers.openai.controls import Controls
from budgetguard.providers.openai.endpoints import ENDPOINTS, Endpoint, endpoint
from budgetguard.providers.openai.errors import (
    AdminAPIError,
    AuthError,
    BadRequestError,
    InvalidQueryError,
    PaginationError,
    ResponseFormatError,
    UnavailableError,
)
from budgetguard.providers.openai.models import Bucket, Page, parse_result
from budgetguard.providers.openai.pages import PageCheck, max_pages
from budgetguard.providers.openai.provider import OPENAI, OpenAIProvider
from budgetguard.providers.openai.query import Query
from budgetguard.providers.openai.retry import RetryPolicy

__all__ = [
    "AUTH_HELP",
    "ENDPOINTS",
    "HOSTED_TOOLS",
    "OPENAI",
    "RATE_LIMIT_FIELDS",
    "AdminAPIError",
    "AdminClient",
    "AlertChannel",
    "AuthError",
    "BadRequestError",
    "Bucket",
    "ClientStats",
    "Controls",
    "Endpoint",
    "HostedTools",
    "InvalidQueryError",
    "ModelPermissions",
    "OpenAIProvider",
    "Page",
    "PageCheck",
    "PaginationError",
    "Project",
    "Query",
    "RateLimit",
    "ResponseFormatError",
    "RetryPolicy",
    "SpendAlert",
    "SpendLimit",
    "UnavailableError",
    "cents",
    "dollars",
    "endpoint",
    "max_pages",
    "parse_result",
]
