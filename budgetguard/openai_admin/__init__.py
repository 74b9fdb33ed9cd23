"""The OpenAI admin usage and costs API, and nothing budget-specific."""

from budgetguard.openai_admin.client import AUTH_HELP, AdminClient, ClientStats
from budgetguard.openai_admin.endpoints import ENDPOINTS, Endpoint, endpoint
from budgetguard.openai_admin.errors import (
    AdminAPIError,
    AuthError,
    BadRequestError,
    InvalidQueryError,
    PaginationError,
    ResponseFormatError,
    UnavailableError,
)
from budgetguard.openai_admin.models import Bucket, Page, parse_result
from budgetguard.openai_admin.pages import PageCheck, max_pages
from budgetguard.openai_admin.query import Query
from budgetguard.openai_admin.retry import RetryPolicy

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
