from django.core.management.base import BaseCommand, CommandParser

from reviewapp import services
from reviewapp.management.commands._common import organization_or_fail


class Command(BaseCommand):
    help = "Create a project (one agent deployment) in an organization if missing. Prints its slug last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org")
        parser.add_argument("project")
        parser.add_argument("--name", default="")

    def handle(self, *args: object, org: str, project: str, name: str, **options: object) -> None:
        created = services.project_create(organization=organization_or_fail(org), slug=project, name=name)
        self.stdout.write(created.slug)
