"""SQS's errors as the SDKs expect them: a short name, a query code, a status, a fault.

The JSON protocol answers `{"__type": "com.amazonaws.sqs#<name>", "message": …}` with the
`x-amzn-query-error: <query code>;Sender` header: botocore reads the query code as the
error's Code and the name for its exception class (`client.exceptions.QueueDoesNotExist`).
The query protocol answers the query code in an XML `ErrorResponse`.

The names are the error shapes of botocore's SQS model. That model lost the query codes
and statuses when SQS moved to JSON; SQS's Smithy model keeps them (its `awsQueryError`
traits), and `QUERY_TRAITS` copies them. A shape without one answers its own name with
400, as SQS does. `COMMON` adds the errors common to AWS services, which no SQS model
lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from burrow.errors import (
    BackendUnavailable,
    BurrowError,
    Forbidden,
    NotFound,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    Unauthorized,
)
from burrow.frontends.sqs_model import MODEL


@dataclass(frozen=True, slots=True)
class Kind:
    query_code: str
    status: int = 400
    sender_fault: bool = True


_SQS = "AWS.SimpleQueueService."
QUERY_TRAITS: dict[str, Kind] = {
    "BatchEntryIdsNotDistinct": Kind(_SQS + "BatchEntryIdsNotDistinct"),
    "BatchRequestTooLong": Kind(_SQS + "BatchRequestTooLong"),
    "EmptyBatchRequest": Kind(_SQS + "EmptyBatchRequest"),
    "InvalidAddress": Kind("InvalidAddress", 404),
    "InvalidBatchEntryId": Kind(_SQS + "InvalidBatchEntryId"),
    "InvalidSecurity": Kind("InvalidSecurity", 403),
    "KmsAccessDenied": Kind("KMS.AccessDeniedException"),
    "KmsDisabled": Kind("KMS.DisabledException"),
    "KmsInvalidKeyUsage": Kind("KMS.InvalidKeyUsageException"),
    "KmsInvalidState": Kind("KMS.InvalidStateException"),
    "KmsNotFound": Kind("KMS.NotFoundException"),
    "KmsOptInRequired": Kind("KMS.OptInRequired", 403),
    "KmsThrottled": Kind("KMS.ThrottlingException"),
    "MessageNotInflight": Kind(_SQS + "MessageNotInflight"),
    "OverLimit": Kind("OverLimit", 403),
    "PurgeQueueInProgress": Kind(_SQS + "PurgeQueueInProgress", 403),
    "QueueDeletedRecently": Kind(_SQS + "QueueDeletedRecently"),
    "QueueDoesNotExist": Kind(_SQS + "NonExistentQueue"),
    "QueueNameExists": Kind("QueueAlreadyExists"),
    "ReceiptHandleIsInvalid": Kind("ReceiptHandleIsInvalid", 404),
    "RequestThrottled": Kind("RequestThrottled", 403),
    "ResourceNotFoundException": Kind("ResourceNotFoundException", 404),
    "TooManyEntriesInBatchRequest": Kind(_SQS + "TooManyEntriesInBatchRequest"),
    "UnsupportedOperation": Kind(_SQS + "UnsupportedOperation"),
}
COMMON: dict[str, Kind] = {
    "AccessDenied": Kind("AccessDenied", 403),
    "IncompleteSignature": Kind("IncompleteSignature"),
    "InternalFailure": Kind("InternalFailure", 500, sender_fault=False),
    "InvalidAction": Kind("InvalidAction"),
    "InvalidClientTokenId": Kind("InvalidClientTokenId", 403),
    "InvalidParameterCombination": Kind("InvalidParameterCombination"),
    "InvalidParameterValue": Kind("InvalidParameterValue"),
    "InvalidQueryParameter": Kind("InvalidQueryParameter"),
    "MalformedQueryString": Kind("MalformedQueryString", 404),
    "MissingAuthenticationToken": Kind("MissingAuthenticationToken", 403),
    "MissingParameter": Kind("MissingParameter"),
    "RequestExpired": Kind("RequestExpired"),
    "RequestTimeout": Kind("RequestTimeout", 408),
    "SerializationException": Kind("SerializationException"),
    "ServiceUnavailable": Kind("ServiceUnavailable", 503, sender_fault=False),
    "SignatureDoesNotMatch": Kind("SignatureDoesNotMatch", 403),
    "ThrottlingException": Kind("ThrottlingException"),
    "UnknownOperationException": Kind("UnknownOperationException"),
}
KINDS: dict[str, Kind] = {
    shape.name: QUERY_TRAITS.get(shape.name, Kind(shape.name)) for shape in MODEL.error_shapes
} | COMMON


class SqsError(Exception):
    """An error answered as SQS answers it; `code` is its short name, a key of `KINDS`."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        kind = KINDS[code]
        self.code = code
        self.message = message
        self.query_code = kind.query_code
        self.status = kind.status
        self.sender_fault = kind.sender_fault
        self.retry_after = retry_after  # seconds, sent as Retry-After


def from_burrow(error: BurrowError) -> SqsError:
    """The SQS error a client expects for one of Burrow's (the service's, a backend's)."""
    sqs_code = getattr(error, "sqs_code", None)  # (auth's refusals name theirs)
    if isinstance(sqs_code, str) and sqs_code in KINDS:
        return SqsError(sqs_code, error.message)
    if isinstance(error, RateLimited):
        return SqsError("ThrottlingException", error.message, error.retry_after)
    if isinstance(error, BackendUnavailable):
        return SqsError("ServiceUnavailable", error.message, error.retry_after)
    if isinstance(error, QuotaExceeded):
        return SqsError("OverLimit", error.message)
    if isinstance(error, Unauthorized):
        return SqsError("InvalidClientTokenId", error.message)
    if isinstance(error, Forbidden):
        return SqsError("AccessDenied", error.message)
    if isinstance(error, NotFound):
        return SqsError("QueueDoesNotExist", "The specified queue does not exist.")
    if isinstance(error, RequestTimeout):
        return SqsError("RequestTimeout", error.message)
    if error.status < 500:  # (a body too large among them, as SQS answers it)
        return SqsError("InvalidParameterValue", error.message)
    return SqsError("InternalFailure", "The request could not be processed.")
