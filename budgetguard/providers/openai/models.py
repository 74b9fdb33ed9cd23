"""Typed models of the API's page, bucket and result objects.

Tolerant where real responses differ from the spec (see the reference notes): unknown fields
are ignored, ``amount.value`` may be a number or a string and is kept as an exact ``Decimal``,
currency is normalised to lower case, the old ``sessions`` field stands for ``num_sessions``,
the old ``result`` key stands for ``results``, and a result object of a kind this version does
not know is kept as an ``UnknownResult`` instead of failing the whole page.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

__all__ = [
    "MAX_COUNT",
    "RESULT_MODELS",
    "Amount",
    "AudioSpeechesResult",
    "AudioTranscriptionsResult",
    "Bucket",
    "CodeInterpreterSessionsResult",
    "CompletionsResult",
    "CostsResult",
    "EmbeddingsResult",
    "FileSearchCallsResult",
    "ImagesResult",
    "ModerationsResult",
    "Page",
    "Result",
    "UnknownResult",
    "VectorStoresResult",
    "WebSearchCallsResult",
    "parse_result",
]


#: The largest count a result may report: 2**53 - 1, the last integer every JSON reader keeps
#: exact. No bucket of real usage comes near it (a billion tokens an hour is ~2**30), and a
#: larger one would not sum exactly (or at all, past 2**63): the page fails instead.
MAX_COUNT = 2**53 - 1

#: A count the API reports: a JSON integer, never negative (strict: no "5", no 5.5, no true).
Count = Annotated[int, Field(ge=0, le=MAX_COUNT, strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Amount(_Model):
    """A sum of money: exact ``Decimal`` value and lower-case ISO 4217 currency."""

    value: Decimal
    currency: str = "usd"

    @field_validator("value", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        if isinstance(value, float):
            # repr() of a float is the shortest text that round-trips: no binary noise added.
            return Decimal(repr(value))
        if isinstance(value, str):
            try:
                value = Decimal(value.strip())
            except InvalidOperation:
                raise ValueError(f"amount is not a number: {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValueError(f"amount is not a number: {value!r}")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"amount is not a finite number: {value!r}")
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def is_currency(self, code: str) -> bool:
        """Case-insensitive currency comparison (the API sends ``usd``)."""
        return self.currency == code.strip().lower()


class _UsageDims(_Model):
    project_id: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None
    model: str | None = None


class CompletionsResult(_UsageDims):
    object: Literal["organization.usage.completions.result"]
    input_tokens: Count
    output_tokens: Count
    num_model_requests: Count
    # Optional breakdowns: absent or null means the API did not split them out (None; the
    # store counts it as 0). A null never fails the page.
    input_cached_tokens: Count | None = None
    input_cache_write_tokens: Count | None = None
    input_uncached_tokens: Count | None = None
    input_audio_tokens: Count | None = None
    output_audio_tokens: Count | None = None
    input_text_tokens: Count | None = None
    output_text_tokens: Count | None = None
    input_cached_text_tokens: Count | None = None
    input_cached_audio_tokens: Count | None = None
    input_image_tokens: Count | None = None
    input_cached_image_tokens: Count | None = None
    output_image_tokens: Count | None = None
    batch: bool | None = None
    service_tier: str | None = None
    api_source: str | None = None


class EmbeddingsResult(_UsageDims):
    object: Literal["organization.usage.embeddings.result"]
    input_tokens: Count
    num_model_requests: Count


class ModerationsResult(_UsageDims):
    object: Literal["organization.usage.moderations.result"]
    input_tokens: Count
    num_model_requests: Count


class ImagesResult(_UsageDims):
    object: Literal["organization.usage.images.result"]
    images: Count
    num_model_requests: Count
    size: str | None = None
    source: str | None = None


class AudioSpeechesResult(_UsageDims):
    object: Literal["organization.usage.audio_speeches.result"]
    characters: Count
    num_model_requests: Count


class AudioTranscriptionsResult(_UsageDims):
    object: Literal["organization.usage.audio_transcriptions.result"]
    seconds: Count
    num_model_requests: Count


class VectorStoresResult(_Model):
    object: Literal["organization.usage.vector_stores.result"]
    usage_bytes: Count
    project_id: str | None = None


class CodeInterpreterSessionsResult(_Model):
    object: Literal["organization.usage.code_interpreter_sessions.result"]
    num_sessions: Count = Field(validation_alias=AliasChoices("num_sessions", "sessions"))
    project_id: str | None = None


class FileSearchCallsResult(_Model):
    object: Literal["organization.usage.file_searches.result"]
    num_requests: Count
    project_id: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None
    vector_store_id: str | None = None


class WebSearchCallsResult(_UsageDims):
    object: Literal["organization.usage.web_searches.result"]
    num_model_requests: Count
    num_requests: Count
    context_level: str | None = None


class CostsResult(_Model):
    object: Literal["organization.costs.result"]
    amount: Amount
    line_item: str | None = None
    project_id: str | None = None
    api_key_id: str | None = None
    user_id: str | None = None
    api_source: str | None = None
    quantity: Decimal | None = None
    quantity_unit: str | None = None

    @field_validator("quantity", mode="before")
    @classmethod
    def _exact_quantity(cls, value: Any) -> Any:
        return Decimal(repr(value)) if isinstance(value, float) else value


class UnknownResult(_Model):
    """A result object this version does not know (a newer API): kept, never fatal."""

    model_config = ConfigDict(extra="allow", frozen=True)
    object: str


_KNOWN: tuple[type[_Model], ...] = (
    CompletionsResult,
    EmbeddingsResult,
    ModerationsResult,
    ImagesResult,
    AudioSpeechesResult,
    AudioTranscriptionsResult,
    VectorStoresResult,
    CodeInterpreterSessionsResult,
    FileSearchCallsResult,
    WebSearchCallsResult,
    CostsResult,
)
#: Result model by the ``object`` value the API sends.
RESULT_MODELS: dict[str, type[_Model]] = {
    model.model_fields["object"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in _KNOWN
}
_UNKNOWN_TAG = "unknown"


def _result_tag(data: Any) -> str:
    tag = data.get("object") if isinstance(data, dict) else getattr(data, "object", None)
    return tag if tag in RESULT_MODELS else _UNKNOWN_TAG


Result = Annotated[
    Annotated[CompletionsResult, Tag("organization.usage.completions.result")]
    | Annotated[EmbeddingsResult, Tag("organization.usage.embeddings.result")]
    | Annotated[ModerationsResult, Tag("organization.usage.moderations.result")]
    | Annotated[ImagesResult, Tag("organization.usage.images.result")]
    | Annotated[AudioSpeechesResult, Tag("organization.usage.audio_speeches.result")]
    | Annotated[AudioTranscriptionsResult, Tag("organization.usage.audio_transcriptions.result")]
    | Annotated[VectorStoresResult, Tag("organization.usage.vector_stores.result")]
    | Annotated[
        CodeInterpreterSessionsResult, Tag("organization.usage.code_interpreter_sessions.result")
    ]
    | Annotated[FileSearchCallsResult, Tag("organization.usage.file_searches.result")]
    | Annotated[WebSearchCallsResult, Tag("organization.usage.web_searches.result")]
    | Annotated[CostsResult, Tag("organization.costs.result")]
    | Annotated[UnknownResult, Tag(_UNKNOWN_TAG)],
    Discriminator(_result_tag),
]
_RESULT_ADAPTER: TypeAdapter[Result] = TypeAdapter(Result)

#: The same union with pydantic's native discriminator: several times faster, but it refuses
#: unknown tags, so pages are parsed with it first and with ``Result`` only when that fails.
_KnownResult = Annotated[
    CompletionsResult
    | EmbeddingsResult
    | ModerationsResult
    | ImagesResult
    | AudioSpeechesResult
    | AudioTranscriptionsResult
    | VectorStoresResult
    | CodeInterpreterSessionsResult
    | FileSearchCallsResult
    | WebSearchCallsResult
    | CostsResult,
    Field(discriminator="object"),
]


def parse_result(data: Any) -> Result:
    """Validate one result by its ``object`` tag; unknown tags become ``UnknownResult``."""
    return _RESULT_ADAPTER.validate_python(data)


class Bucket(_Model):
    """One time bucket: ``[start_time, end_time)`` in Unix seconds and its results."""

    object: Literal["bucket"]
    start_time: Annotated[int, Field(strict=True)]
    end_time: Annotated[int, Field(strict=True)]
    #: required: an empty bucket says ``results: []``, so a missing or null list is no data
    results: tuple[Result, ...] = Field(validation_alias=AliasChoices("results", "result"))


class Page(_Model):
    """One page of buckets and the cursor to the next."""

    object: Literal["page"]
    data: tuple[Bucket, ...]
    has_more: bool
    next_page: str | None = None

    @classmethod
    def parse(cls, payload: bytes | Any) -> Page:
        """Validate JSON text (bytes) or parsed JSON; fast path first, tolerant fallback."""
        try:
            if isinstance(payload, bytes | str):
                return _KnownPage.model_validate_json(payload)
            return _KnownPage.model_validate(payload)
        except ValidationError as exc:
            if not any(e["type"] == "union_tag_invalid" for e in exc.errors()):
                raise
        if isinstance(payload, bytes | str):
            return cls.model_validate_json(payload)
        return cls.model_validate(payload)


class _KnownBucket(Bucket):
    results: tuple[_KnownResult, ...] = Field(validation_alias=AliasChoices("results", "result"))


class _KnownPage(Page):
    data: tuple[_KnownBucket, ...]
