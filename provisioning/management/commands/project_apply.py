import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning import services
from reviewapp import validation
from reviewapp.errors import ApplicationError
from reviewapp.models import Organization, Project


class Command(BaseCommand):
    help = (
        "Apply a project configuration document (GET /api/v1/projects/<slug>/config) to ORG/PROJECT: "
        "create what is missing, make new versions of what changed, leave the rest alone. "
        "Prints the diff; --dry-run writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The document (JSON); - reads standard input.")
        parser.add_argument("project", help="ORG/PROJECT, by slugs.")
        parser.add_argument("--dry-run", action="store_true", help="Print the diff; write nothing.")
        parser.add_argument("--create", action="store_true", help="Create the project if it does not exist.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, file: str, project: str, dry_run: bool, create: bool, **options: Any) -> None:
        org_slug, _, project_slug = project.partition("/")
        if not org_slug or not project_slug:
            raise CommandError("Name the project as ORG/PROJECT, e.g. acme/support.")
        organization = Organization.objects.filter(slug=org_slug).first()
        if organization is None:
            raise CommandError(f"No organization '{org_slug}'. Create it with: manage.py create_org {org_slug}")
        try:
            text = self.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
            data = validation.json_loads(text)
        except (OSError, ValueError, ApplicationError) as exc:
            raise CommandError(f"Cannot read {file}: {getattr(exc, 'message', exc)}") from exc
        target = Project.objects.filter(organization=organization, slug=project_slug).first()
        try:
            if target is None:
                if not create:
                    raise CommandError(f"No project '{project}'. Pass --create to make it from the document.")
                _, result = services.project_create_from_config(
                    principal=None, organization=organization, slug=project_slug, name="", data=data, dry_run=dry_run
                )
            else:
                result = services.project_config_apply(principal=None, project=target, data=data, dry_run=dry_run)
        except ApplicationError as exc:
            details = "\n".join(f"  {path}: {'; '.join(map(str, msgs))}" for path, msgs in exc.errors.items())
            raise CommandError(f"{exc.message}\n{details}") from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        for c in result.changes:
            fields = f" ({', '.join(c.fields)})" if c.fields else ""
            self.stdout.write(f"{c.change:<12} {c.object:<16} {c.path:<16} {c.name}{fields}")
        verb = "Would apply" if dry_run else "Applied"
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result.summary.items())
        self.stdout.write(f"{verb} to {project}: {counts}.")
