"""botocore's SQS API model (botocore is pinned with Burrow), loaded once for the wire
layer: its shapes drive decoding, encoding and the errors' names."""

from __future__ import annotations

import botocore.session
from botocore.model import OperationModel, ServiceModel

MODEL: ServiceModel = botocore.session.get_session().get_service_model("sqs")
OPERATIONS: dict[str, OperationModel] = {
    name: MODEL.operation_model(name) for name in MODEL.operation_names
}
