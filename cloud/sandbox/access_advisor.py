"""IAM Access Advisor for moto, answered from recorded activity.

moto 5.2 answers these calls with HTTP 500. `install` gives its IAM response class the missing
handlers; they read an `ActivityLog` that the seed (or a test) fills. CloudTrail's
LookupEvents is in `cloud.sandbox.cloudtrail`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from cloud.sandbox.activity import ActivityLog, LastAccessedJob, ServiceUse

if TYPE_CHECKING:
    from moto.core.responses import ActionResult
    from moto.iam.models import IAMBackend
    from moto.iam.responses import IamResponse

SERVICE_NAMES = {
    "bedrock": "Amazon Bedrock",
    "cloudwatch": "Amazon CloudWatch",
    "dynamodb": "Amazon DynamoDB",
    "iam": "AWS Identity and Access Management",
    "kms": "AWS Key Management Service",
    "lambda": "AWS Lambda",
    "logs": "Amazon CloudWatch Logs",
    "s3": "Amazon S3",
    "sagemaker": "Amazon SageMaker",
    "secretsmanager": "AWS Secrets Manager",
    "sqs": "Amazon SQS",
    "sts": "AWS Security Token Service",
}


def install(log: ActivityLog) -> None:
    """Give moto's IAM response class Access Advisor handlers that answer from `log`."""
    from moto.iam.responses import IamResponse

    iam_handlers = {
        "generate_service_last_accessed_details": _generate_handler(log),
        "get_service_last_accessed_details": _get_handler(log),
    }
    for name, handler in iam_handlers.items():
        setattr(IamResponse, name, handler)


def _generate_handler(log: ActivityLog) -> Callable[[IamResponse], ActionResult]:
    def generate_service_last_accessed_details(self: IamResponse) -> ActionResult:
        from moto.core.responses import ActionResult

        arn = str(self._get_param("Arn"))
        granularity = str(self._get_param("Granularity") or "SERVICE_LEVEL")
        _policies_of(self.backend, arn)  # raises NoSuchEntity for an unknown role or user
        return ActionResult({"JobId": log.start_job(arn, granularity)})

    return generate_service_last_accessed_details


def _get_handler(log: ActivityLog) -> Callable[[IamResponse], ActionResult]:
    def get_service_last_accessed_details(self: IamResponse) -> ActionResult:
        from moto.core.responses import ActionResult
        from moto.iam.exceptions import NoSuchEntity

        job_id = str(self._get_param("JobId"))
        job = log.job(job_id)
        if job is None:
            raise NoSuchEntity(f"No job with id {job_id} exists.")
        granted = _granted_namespaces(_policies_of(self.backend, job.arn))
        return ActionResult(
            {
                "JobStatus": "COMPLETED",
                "JobType": job.granularity,
                "JobCreationDate": job.created_at,
                "JobCompletionDate": job.created_at,
                "ServicesLastAccessed": _services(job, log.uses(job.arn), granted),
                "IsTruncated": False,
            }
        )

    return get_service_last_accessed_details


def _services(
    job: LastAccessedJob, uses: Iterable[ServiceUse], granted: set[str]
) -> list[dict[str, Any]]:
    by_namespace = {use.namespace: use for use in uses}
    services: list[dict[str, Any]] = []
    for namespace in sorted(granted | set(by_namespace)):
        entry: dict[str, Any] = {
            "ServiceName": SERVICE_NAMES.get(namespace, namespace),
            "ServiceNamespace": namespace,
            "TotalAuthenticatedEntities": 0,
        }
        use = by_namespace.get(namespace)
        if use is not None:
            entry |= {
                "LastAuthenticated": use.last_accessed,
                "LastAuthenticatedEntity": job.arn,
                "LastAuthenticatedRegion": use.region,
                "TotalAuthenticatedEntities": 1,
            }
            if job.granularity == "ACTION_LEVEL":
                entry["TrackedActionsLastAccessed"] = [
                    {
                        "ActionName": action.split(":")[-1],
                        "LastAccessedEntity": job.arn,
                        "LastAccessedTime": when,
                        "LastAccessedRegion": use.region,
                    }
                    for action, when in sorted(use.actions.items())
                ]
        services.append(entry)
    return services


def _policies_of(backend: IAMBackend, arn: str) -> list[str]:
    """Return the policy documents of the role or user `arn` names in this account."""
    from moto.iam.exceptions import InvalidInput, NoSuchEntity

    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam":
        raise InvalidInput(f"ARN {arn} is not valid.")
    if parts[4] != backend.account_id:
        raise NoSuchEntity(f"The entity {arn} does not exist in account {backend.account_id}.")
    resource = parts[5]
    if resource.startswith("role/"):
        entity: Any = backend.get_role_by_arn(arn)
    elif resource.startswith("user/"):
        entity = backend.get_user(resource.rsplit("/", 1)[-1])
    else:
        raise InvalidInput("The Leash sandbox answers Access Advisor for roles and users only.")
    documents = list(entity.policies.values())
    for policy in entity.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    return documents


def _granted_namespaces(documents: Iterable[str]) -> set[str]:
    namespaces: set[str] = set()
    for document in documents:
        statements = json.loads(document).get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            for action in [actions] if isinstance(actions, str) else actions:
                if ":" in action:
                    namespaces.add(action.split(":", 1)[0].lower())
    return namespaces
