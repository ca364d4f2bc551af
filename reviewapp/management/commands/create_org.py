from django.core.management.base import BaseCommand, CommandParser

from reviewapp import services


class Command(BaseCommand):
    help = "Create an organization (tenant) if missing. Prints its slug last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")

    def handle(self, *args: object, slug: str, name: str, **options: object) -> None:
        organization = services.organization_create(slug=slug, name=name)
        self.stdout.write(organization.slug)
