"""SQS's errors as the SDKs expect them: a short name, a query-protocol code, a status.

The JSON protocol answers `{"__type": "com.amazonaws.sqs#<name>", "message": …}` with the
`x-amzn-query-error: <query code>;Sender` header: botocore reads the query code as the
error's Code and the name for its exception class (`client.exceptions.QueueDoesNotExist`).
The query protocol answers the query code in an XML `ErrorResponse`. SQS's API model
lost its query codes when SQS moved to JSON; they are listed here as SQS still sends
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from burrow.errors import (
    BackendUnavailable,
    BurrowError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    Unauthorized,
)


@dataclass(frozen=True, slots=True)
class Kind:
    query_code: str
    status: int = 400
    sender_fault: bool = True


_SQS = "AWS.SimpleQueueService."
KINDS: dict[str, Kind] = {
    # The errors of SQS's API model, with the query codes SQS sends for them.
    "BatchEntryIdsNotDistinct": Kind(_SQS + "BatchEntryIdsNotDistinct"),
    "BatchRequestTooLong": Kind(_SQS + "BatchRequestTooLong"),
    "EmptyBatchRequest": Kind(_SQS + "EmptyBatchRequest"),
    "InvalidAddress": Kind("InvalidAddress", 404),
    "InvalidAttributeName": Kind("InvalidAttributeName"),
    "InvalidAttributeValue": Kind("InvalidAttributeValue"),
    "InvalidBatchEntryId": Kind(_SQS + "InvalidBatchEntryId"),
    "InvalidIdFormat": Kind("InvalidIdFormat"),
    "InvalidMessageContents": Kind("InvalidMessageContents"),
    "InvalidSecurity": Kind("InvalidSecurity", 403),
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
    # The errors common to AWS services.
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


class SqsError(Exception):
    """An error answered as SQS answers it; `code` is its name in `KINDS`."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        kind = KINDS[code]
        self.code = code
        self.message = message
        self.query_code = kind.query_code
        self.status = kind.status
        self.sender_fault = kind.sender_fault
        self.retry_after = retry_after


def from_burrow(error: BurrowError) -> SqsError:
    """The SQS error a client expects for one of Burrow's (the service's, a backend's)."""
    sqs_code = getattr(error, "sqs_code", None)
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
    if isinstance(error, PayloadTooLarge):
        return SqsError("InvalidParameterValue", error.message)
    if error.status < 500:
        return SqsError("InvalidParameterValue", error.message)
    return SqsError("InternalFailure", "The request could not be processed.")
