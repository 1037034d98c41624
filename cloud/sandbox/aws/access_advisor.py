"""IAM Access Advisor for moto, answered from recorded activity.

moto 5.2 answers these calls with HTTP 500. `install` gives its IAM response class the missing
handlers; they read an `ActivityLog` that the seed (or a test) fills. CloudTrail's
LookupEvents is in `cloud.sandbox.aws.cloudtrail`.

As AWS does, a report lists every service the principal's policies allow (services used but
no longer allowed are left out) with its last use in the 400-day tracking period. At action
level, a service in `ACTION_LEVEL` also lists each tracked action the policies allow, with a
time only for those used; AWS leaves that list out when none of them was used in the tracking
period, and so does the sandbox. Tracked means *management* actions: data-plane actions and
`iam:PassRole` are in no list here (compare `cloud.aws.tracked_actions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from cloud.sandbox.aws.activity import ActivityLog, JobStatus, LastAccessedJob, ServiceUse

if TYPE_CHECKING:
    from moto.core.responses import ActionResult
    from moto.iam.models import IAMBackend
    from moto.iam.responses import IamResponse

TRACKING_PERIOD = timedelta(days=400)
DEFAULT_PAGE_SIZE = 100
GRANULARITIES = ("SERVICE_LEVEL", "ACTION_LEVEL")

SERVICE_NAMES = {
    "bedrock": "Amazon Bedrock",
    "cloudformation": "AWS CloudFormation",
    "cloudwatch": "Amazon CloudWatch",
    "dynamodb": "Amazon DynamoDB",
    "ec2": "Amazon EC2",
    "glue": "AWS Glue",
    "iam": "AWS Identity and Access Management",
    "kms": "AWS Key Management Service",
    "lambda": "AWS Lambda",
    "logs": "Amazon CloudWatch Logs",
    "s3": "Amazon S3",
    "sagemaker": "Amazon SageMaker",
    "secretsmanager": "AWS Secrets Manager",
    "sqs": "Amazon SQS",
    "sts": "AWS Security Token Service",
    "textract": "Amazon Textract",
}

# The services the sandbox tracks at action level, and their tracked (management) actions.
# Every other service is reported at service level only.
ACTION_LEVEL: dict[str, tuple[str, ...]] = {
    "s3": (
        "CreateBucket", "DeleteBucket", "DeleteBucketPolicy", "GetBucketAcl",
        "GetBucketLocation", "GetBucketPolicy", "GetBucketTagging", "GetBucketVersioning",
        "GetEncryptionConfiguration", "GetLifecycleConfiguration", "ListAllMyBuckets",
        "PutBucketAcl", "PutBucketPolicy", "PutBucketPublicAccessBlock", "PutBucketTagging",
        "PutBucketVersioning", "PutEncryptionConfiguration", "PutLifecycleConfiguration",
    ),
    "iam": (
        "AttachRolePolicy", "AttachUserPolicy", "CreateAccessKey", "CreatePolicy",
        "CreatePolicyVersion", "CreateRole", "CreateUser", "DeleteAccessKey", "DeletePolicy",
        "DeleteRole", "DeleteRolePolicy", "DeleteUser", "DetachRolePolicy", "GetPolicy",
        "GetPolicyVersion", "GetRole", "GetRolePolicy", "GetUser", "ListAttachedRolePolicies",
        "ListPolicies", "ListRolePolicies", "ListRoles", "ListUsers", "PutRolePolicy",
        "PutUserPolicy", "TagRole", "UpdateAssumeRolePolicy",
    ),
    "lambda": (
        "AddPermission", "CreateFunction", "DeleteFunction", "GetFunction",
        "GetFunctionConfiguration", "ListFunctions", "RemovePermission", "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
    ),
    "ec2": (
        "AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "CreateTags",
        "DescribeInstances", "DescribeSecurityGroups", "RunInstances", "StartInstances",
        "StopInstances", "TerminateInstances",
    ),
    "bedrock": (
        "Converse", "ConverseStream", "CreateAgent", "CreateFlow", "CreateKnowledgeBase",
        "CreateModelCustomizationJob", "GetFoundationModel", "InvokeModel",
        "InvokeModelWithResponseStream", "ListFoundationModels", "UpdateFlow",
    ),
    "sagemaker": (
        "CreateEndpoint", "CreateEndpointConfig", "CreateModel", "CreateNotebookInstance",
        "CreateProcessingJob", "CreateTrainingJob", "DeleteEndpoint", "DescribeEndpoint",
        "DescribeProcessingJob", "DescribeTrainingJob", "ListEndpoints", "ListTrainingJobs",
    ),
}  # fmt: skip


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
        from moto.iam.exceptions import InvalidInput

        arn = str(self._get_param("Arn"))
        granularity = str(self._get_param("Granularity") or "SERVICE_LEVEL")
        if granularity not in GRANULARITIES:
            raise InvalidInput(f"Granularity {granularity} is not one of {GRANULARITIES}.")
        _policies_of(self.backend, arn)  # raises NoSuchEntity for an unknown role or user
        return ActionResult({"JobId": log.start_job(arn, granularity)})

    return generate_service_last_accessed_details


def _get_handler(log: ActivityLog) -> Callable[[IamResponse], ActionResult]:
    def get_service_last_accessed_details(self: IamResponse) -> ActionResult:
        from moto.core.responses import ActionResult
        from moto.iam.exceptions import InvalidInput, NoSuchEntity

        job_id = str(self._get_param("JobId"))
        found = log.read_job(job_id)
        if found is None:
            raise NoSuchEntity(f"No job with id {job_id} exists.")
        job, status = found
        result: dict[str, Any] = {
            "JobStatus": status.value,
            "JobType": job.granularity,
            "JobCreationDate": job.created_at,
            "ServicesLastAccessed": [],
            "IsTruncated": False,
        }
        if status is JobStatus.IN_PROGRESS:
            return ActionResult(result)
        result["JobCompletionDate"] = job.created_at
        if job.failure is not None:
            code, message = job.failure
            return ActionResult(result | {"Error": {"Code": code, "Message": message}})
        patterns = _allowed_actions(_policies_of(self.backend, job.arn))
        services = _services(job, log.uses(job.arn), patterns)
        size = int(
            self._get_param("MaxItems") or log.access_advisor_page_size() or DEFAULT_PAGE_SIZE
        )
        marker = str(self._get_param("Marker") or "0")
        if not marker.isdigit() or size < 1:
            raise InvalidInput("Marker and MaxItems must be the ones the last page gave.")
        start = int(marker)
        result["ServicesLastAccessed"] = services[start : start + size]
        if start + size < len(services):
            result |= {"IsTruncated": True, "Marker": str(start + size)}
        return ActionResult(result)

    return get_service_last_accessed_details


def _services(
    job: LastAccessedJob, uses: Iterable[ServiceUse], patterns: list[str]
) -> list[dict[str, Any]]:
    """Describe every allowed service: its last use and, at action level, its tracked actions."""
    oldest = job.created_at - TRACKING_PERIOD
    by_namespace = {use.namespace: use for use in uses if use.last_accessed >= oldest}
    services: list[dict[str, Any]] = []
    for namespace in sorted(_namespaces(patterns)):
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
            if job.granularity == "ACTION_LEVEL" and namespace in ACTION_LEVEL:
                tracked = _tracked(job.arn, namespace, use, patterns, oldest)
                if any("LastAccessedTime" in action for action in tracked):
                    entry["TrackedActionsLastAccessed"] = tracked
        services.append(entry)
    return services


def _tracked(
    arn: str, namespace: str, use: ServiceUse, patterns: list[str], oldest: datetime
) -> list[dict[str, Any]]:
    """List the tracked actions of `namespace` the policies allow, with their last use."""
    used = {action.lower(): when for action, when in use.actions.items() if when >= oldest}
    tracked: list[dict[str, Any]] = []
    for name in ACTION_LEVEL[namespace]:
        action = f"{namespace}:{name}"
        if not any(fnmatchcase(action.lower(), pattern) for pattern in patterns):
            continue
        entry: dict[str, Any] = {"ActionName": name}
        when = used.get(action.lower())
        if when is not None:
            entry |= {
                "LastAccessedEntity": arn,
                "LastAccessedTime": when,
                "LastAccessedRegion": use.region,
            }
        tracked.append(entry)
    return tracked


def _policies_of(backend: IAMBackend, arn: str) -> list[str]:
    """Return the policy documents of the role or user `arn` names (a user's groups' too)."""
    from moto.iam.exceptions import InvalidInput, NoSuchEntity

    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam":
        raise InvalidInput(f"ARN {arn} is not valid.")
    if parts[4] != backend.account_id:
        raise NoSuchEntity(f"The entity {arn} does not exist in account {backend.account_id}.")
    resource = parts[5]
    entities: list[Any]
    if resource.startswith("role/"):
        entities = [backend.get_role_by_arn(arn)]
    elif resource.startswith("user/"):
        name = resource.rsplit("/", 1)[-1]
        entities = [backend.get_user(name), *backend.get_groups_for_user(name)]
    else:
        raise InvalidInput("The Leash sandbox answers Access Advisor for roles and users only.")
    documents: list[str] = []
    for entity in entities:
        documents += entity.policies.values()
        for policy in entity.managed_policies.values():
            documents += [v.document for v in policy.versions if v.is_default]
    return documents


def _allowed_actions(documents: Iterable[str]) -> list[str]:
    """Return the Allow action patterns of the documents, lower-cased."""
    patterns: list[str] = []
    for document in documents:
        statements = json.loads(document).get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            patterns += [a.lower() for a in ([actions] if isinstance(actions, str) else actions)]
    return patterns


def _namespaces(patterns: Iterable[str]) -> set[str]:
    """Return the services the patterns allow; a wildcard service names every known one."""
    known = set(SERVICE_NAMES) | set(ACTION_LEVEL)
    namespaces: set[str] = set()
    for pattern in patterns:
        service = pattern.split(":", 1)[0] if ":" in pattern else pattern
        if "*" in service or "?" in service:
            namespaces.update(n for n in known if fnmatchcase(n, service))
        elif ":" in pattern:
            namespaces.add(service)
    return namespaces
