from django.core.management.base import BaseCommand, CommandParser

from reviewapp import services
from reviewapp.management.commands._common import organization_or_fail, project_or_fail


class Command(BaseCommand):
    help = "Create a project API key for an agent. The raw key is the last line: it is shown only once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org")
        parser.add_argument("project")
        parser.add_argument("--name", default="cli")

    def handle(self, *args: object, org: str, project: str, name: str, **options: object) -> None:
        target = project_or_fail(organization_or_fail(org), project)
        issued = services.api_key_create(project=target, name=name)
        self.stderr.write(f"Key '{name}' for {org}/{project} (prefix {issued.record.prefix}). Store it now.")
        self.stdout.write(issued.raw)
