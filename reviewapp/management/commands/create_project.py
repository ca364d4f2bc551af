from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp import services
from reviewapp.errors import ApplicationError
from reviewapp.management.commands._common import organization_or_fail


class Command(BaseCommand):
    help = "Create a project (one agent deployment) in an organization if missing. Prints its slug last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org")
        parser.add_argument("project")
        parser.add_argument("--name", default="")
        parser.add_argument("--timezone", default="UTC", help="IANA zone of the project's day (sampling budgets).")

    def handle(self, *args: object, org: str, project: str, name: str, timezone: str, **options: object) -> None:
        try:
            created = services.project_create(
                organization=organization_or_fail(org), slug=project, name=name, time_zone=timezone
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {timezone!r}") from exc
        self.stdout.write(created.slug)
