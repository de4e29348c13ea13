"""Catalog import over REST: the same form, service and job as the admin page."""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.forms import ImportUploadForm
from catalog.import_jobs import may_see_import_jobs, may_start_imports, rejections_csv
from catalog.models import ImportJob
from outfits.api.authentication import raw_key_of
from outfits.api.errors import ErrorResponseSerializer
from outfits.login_throttle import ThrottledBasicAuthentication


class ImportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    rejections_url = serializers.SerializerMethodField()
    progress_percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "original_name",
            "dry_run",
            "deactivate_missing",
            "create_categories",
            "column_mapping",
            "encoding",
            "delimiter",
            "lines_total",
            "lines_done",
            "progress_percent",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "deactivated",
            "message",
            "rejections_url",
            "created_at",
            "started_at",
            "finished_at",
            "worker",
            "heartbeat_at",
        ]

    def get_url(self, job: ImportJob) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("api-v1:import-detail", args=[job.pk])
        )

    def get_rejections_url(self, job: ImportJob) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("api-v1:import-rejections", args=[job.pk])
        )


class ImportJobPermission(BasePermission):
    """The admin's model permissions, not staff status alone: starting an import needs
    catalog.add_importjob (as the upload page), reading a job catalog.view_importjob."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method == "POST":
            if not may_start_imports(request.user):
                raise exceptions.PermissionDenied(
                    "Importing needs the permission catalog.add_importjob (Can add import job); "
                    "ask an administrator to grant it."
                )
        elif not may_see_import_jobs(request.user):
            raise exceptions.PermissionDenied(
                "Reading import jobs needs the permission catalog.view_importjob "
                "(Can view import job); ask an administrator to grant it."
            )
        return True


class NoStorefrontKey(BasePermission):
    """A storefront's API key sent here gets a 403 that says why, not "credentials were not
    provided": imports are staff work, signed in as an admin user."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        signed_in = bool(request.user and request.user.is_authenticated)
        if raw_key_of(request._request) is not None and not signed_in:
            raise exceptions.PermissionDenied(
                "A storefront API key cannot use the imports endpoints: they are for staff. "
                "Sign in with an admin user (HTTP Basic, or the admin's session) that has the "
                "import permissions.",
                code="storefront_key_not_allowed",
            )
        return True


class ImportApiView(APIView):
    # Basic first: without credentials the answer is 401 with WWW-Authenticate, which says
    # what to send. Failed passwords lock a username or address out for a while (429).
    authentication_classes = [ThrottledBasicAuthentication, SessionAuthentication]
    permission_classes = [NoStorefrontKey, IsAdminUser, ImportJobPermission]


ERRORS = {
    401: OpenApiResponse(ErrorResponseSerializer, description="No or wrong credentials."),
    503: OpenApiResponse(
        ErrorResponseSerializer,
        description="database_unavailable (with Retry-After): the database cannot be reached.",
    ),
    403: OpenApiResponse(
        ErrorResponseSerializer,
        description="Not staff, without the model permission, or a storefront API key.",
    ),
    429: OpenApiResponse(
        ErrorResponseSerializer,
        description="Too many failed logins for the username or address (login_locked_out, "
        "with Retry-After).",
    ),
}
NOT_FOUND = {404: OpenApiResponse(ErrorResponseSerializer, description="No such import job.")}


class ImportUploadSerializer(serializers.Serializer):
    """The upload's fields, for the schema; ImportUploadForm validates them."""

    kind = serializers.ChoiceField(ImportJob.Kind.choices, default=ImportJob.Kind.CATALOG)
    csv_file = serializers.FileField()
    images_zip = serializers.FileField(required=False)
    images_folder = serializers.CharField(required=False)
    column_mapping = serializers.CharField(required=False, help_text="e.g. sku=cod_modelo")
    dry_run = serializers.BooleanField(default=False)
    deactivate_missing = serializers.BooleanField(default=False)
    create_categories = serializers.BooleanField(default=True)


@extend_schema(
    summary="Import a catalog or outfits CSV (staff)",
    request={"multipart/form-data": ImportUploadSerializer},
    responses={
        202: ImportJobSerializer,
        400: OpenApiResponse(ErrorResponseSerializer, description="Invalid fields."),
        **ERRORS,
    },
)
class ImportJobListView(ImportApiView):
    """POST a multipart upload (fields as on the admin page: kind, csv_file, images_zip,
    images_folder, column_mapping, dry_run, deactivate_missing, create_categories) → 202 and
    the job; poll its `url`."""

    def post(self, request: Request) -> Response:
        data = request.data.copy()
        data.setdefault("create_categories", "true")
        form = ImportUploadForm(data, request.FILES)
        if not form.is_valid():
            raise exceptions.ValidationError(
                {
                    field: [str(message) for message in messages]
                    for field, messages in form.errors.items()
                }
            )
        job = form.start_job(request.user)
        body = ImportJobSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


@extend_schema(
    summary="An import job's progress and outcome (staff)",
    responses={200: ImportJobSerializer, **ERRORS, **NOT_FOUND},
)
class ImportJobDetailView(ImportApiView):
    def get(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(ImportJob, pk=job_id)
        return Response(ImportJobSerializer(job, context={"request": request}).data)


@extend_schema(
    summary="An import's rejected rows as CSV (staff)",
    responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS, **NOT_FOUND},
)
class ImportJobRejectionsView(ImportApiView):
    def get(self, request: Request, job_id: int) -> StreamingHttpResponse:
        job = get_object_or_404(ImportJob, pk=job_id)
        response = StreamingHttpResponse(rejections_csv(job), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected.csv"'
        return response
