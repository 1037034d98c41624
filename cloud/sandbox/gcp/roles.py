"""Predefined roles the emulator knows (IAM admin `GetRole`): the ones its seed and Leash's
example permission sets use, with the permissions Google lists for them (abridged where
Google's lists run to hundreds; what is kept is real)."""

from __future__ import annotations

from collections.abc import Mapping

_STORAGE_OBJECTS = (
    "storage.objects.create",
    "storage.objects.delete",
    "storage.objects.get",
    "storage.objects.getIamPolicy",
    "storage.objects.list",
    "storage.objects.setIamPolicy",
    "storage.objects.update",
)

PREDEFINED_ROLES: Mapping[str, tuple[str, ...]] = {
    "roles/storage.admin": (
        "storage.buckets.create",
        "storage.buckets.delete",
        "storage.buckets.get",
        "storage.buckets.getIamPolicy",
        "storage.buckets.list",
        "storage.buckets.setIamPolicy",
        "storage.buckets.update",
        *_STORAGE_OBJECTS,
    ),
    "roles/storage.objectAdmin": _STORAGE_OBJECTS,
    "roles/storage.objectUser": (
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.get",
        "storage.objects.list",
        "storage.objects.update",
    ),
    "roles/storage.objectViewer": ("storage.objects.get", "storage.objects.list"),
    "roles/bigquery.dataEditor": (
        "bigquery.datasets.create",
        "bigquery.datasets.get",
        "bigquery.tables.create",
        "bigquery.tables.delete",
        "bigquery.tables.get",
        "bigquery.tables.getData",
        "bigquery.tables.list",
        "bigquery.tables.update",
        "bigquery.tables.updateData",
    ),
    "roles/bigquery.dataViewer": (
        "bigquery.datasets.get",
        "bigquery.tables.get",
        "bigquery.tables.getData",
        "bigquery.tables.list",
    ),
    "roles/bigquery.jobUser": ("bigquery.jobs.create",),
    "roles/aiplatform.user": (
        "aiplatform.endpoints.predict",
        "aiplatform.endpoints.get",
        "aiplatform.endpoints.list",
        "aiplatform.models.get",
        "aiplatform.models.list",
    ),
    "roles/logging.logWriter": ("logging.logEntries.create",),
    # Code execution as a service account, tiered on what they carry (issue 17). None holds
    # iam.serviceAccounts.actAs: builds, clusters and environments run as a service account
    # all the same (Google: "Cloud Build IAM roles", "GKE predefined roles", "Cloud Composer
    # access control").
    "roles/cloudbuild.builds.editor": (
        "cloudbuild.builds.create",
        "cloudbuild.builds.get",
        "cloudbuild.builds.list",
        "cloudbuild.builds.update",
        "cloudbuild.workerpools.use",
        "resourcemanager.projects.get",
        "resourcemanager.projects.list",
    ),
    "roles/container.admin": (
        "container.clusters.create",
        "container.clusters.delete",
        "container.clusters.get",
        "container.clusters.getCredentials",
        "container.clusters.list",
        "container.clusters.update",
        "container.pods.exec",
        "container.secrets.get",
        "resourcemanager.projects.get",
        "resourcemanager.projects.list",
    ),
    "roles/composer.admin": (
        "composer.environments.create",
        "composer.environments.delete",
        "composer.environments.get",
        "composer.environments.list",
        "composer.environments.update",
        "composer.imageversions.list",
        "composer.operations.get",
        "composer.operations.list",
        "resourcemanager.projects.get",
        "resourcemanager.projects.list",
    ),
    "roles/iam.serviceAccountTokenCreator": (
        "iam.serviceAccounts.getAccessToken",
        "iam.serviceAccounts.getOpenIdToken",
        "iam.serviceAccounts.implicitDelegation",
        "iam.serviceAccounts.signBlob",
        "iam.serviceAccounts.signJwt",
    ),
}
