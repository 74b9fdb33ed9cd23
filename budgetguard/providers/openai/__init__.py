"""The OpenAI admin usage and costs API, and nothing budget-specific."""

from budgetguard.providers.openai.client import AUTH_HELP, AdminClient, ClientStats
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
from budgetguard.providers.openai.query import Query
from budgetguard.providers.openai.retry import RetryPolicy

__all__ = [
    "AUTH_HELP",
    "ENDPOINTS",
    "AdminAPIError",
    "AdminClient",
    "AuthError",
    "BadRequestError",
    "Bucket",
    "ClientStats",
    "Endpoint",
    "InvalidQueryError",
    "Page",
    "PageCheck",
    "PaginationError",
    "Query",
    "ResponseFormatError",
    "RetryPolicy",
    "UnavailableError",
    "endpoint",
    "max_pages",
    "parse_result",
]
