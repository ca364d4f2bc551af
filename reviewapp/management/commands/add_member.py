from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp import services
from reviewapp.errors import ApplicationError
from reviewapp.management.commands._common import organization_or_fail
from reviewapp.models import Role


class Command(BaseCommand):
    help = "Give USERNAME a ROLE in ORG, creating the user if missing. Prints the username last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org")
        parser.add_argument("username")
        parser.add_argument("role", choices=Role.values)
        parser.add_argument("--password", default=None, help="Set this password (else an existing one is kept).")
        parser.add_argument("--email", default="")

    def handle(
        self, *args: object, org: str, username: str, role: str, password: str | None, email: str, **options: object
    ) -> None:
        try:
            membership = services.membership_add(
                organization=organization_or_fail(org), username=username, role=role, password=password, email=email
            )
        except ApplicationError as exc:
            details = " ".join(message for messages in exc.errors.values() for message in messages)
            raise CommandError(f"{exc.message} {details}".strip()) from exc
        self.stdout.write(membership.user.get_username())
