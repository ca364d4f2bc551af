"""`manage.py seed_demo`: the demo tenants, their people and a few thousand conversations."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.labeling import labeling_demo_labels_seed, labeling_demo_seed
from demo.scenarios import DEMO_ORG, DEMO_PASSWORD, DEMO_PROJECT, DEMO_URL, DEMO_USERS, RETAIL_ORG, RETAIL_USERS
from demo.seed import demo_seed
from reviewapp.models import Project


class Command(BaseCommand):
    help = (
        "Create the demo organizations (Demo Airline with 4 users, Demo Retail) and synthetic conversations. "
        "Deterministic for a seed; running it again adds nothing that is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=7, help="Random seed for the generated content (default 7).")
        parser.add_argument(
            "--conversations", type=int, default=3000, help="Demo Airline conversations (default 3000)."
        )
        parser.add_argument(
            "--retail-conversations", type=int, default=200, help="Demo Retail conversations (default 200)."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off (the demo users have a published password).",
        )
        parser.add_argument(
            "--no-logins", action="store_true", help="Do not print the logins and address (`serve` prints them)."
        )

    def handle(
        self,
        *args: object,
        seed: int,
        conversations: int,
        retail_conversations: int,
        force: bool = False,
        no_logins: bool = False,
        verbosity: int = 1,
        **options: object,
    ) -> None:
        # The demo people sign in with a password printed in the README; on a real deployment
        # (DEBUG off) that is an open door, so it takes a deliberate --force.
        if not settings.DEBUG and not force:
            raise CommandError(
                "DEBUG is off: this looks like a real deployment, and the demo users' password is public. "
                "Run with DEBUG=1, or pass --force if you really mean it."
            )
        if conversations < 0 or retail_conversations < 0:
            raise CommandError("Conversation counts cannot be negative.")
        if verbosity:
            self.stdout.write(f"Seeding demo data (seed {seed})...")
        result = demo_seed(
            seed=seed,
            conversations=conversations,
            retail_conversations_count=retail_conversations,
            progress=self.stdout.write if verbosity else None,
        )
        # Labeling's demo queues sample the demo traffic through their backfill.
        support = Project.objects.get(organization__slug=DEMO_ORG, slug=DEMO_PROJECT)
        queues = labeling_demo_seed(project=support)
        # A first morning of labels (and a few reviews) on the QA queue, so its agreement and
        # annotator pages show figures.
        labeled = labeling_demo_labels_seed(queue=queues[0], reviewer_username="engineer", seed=seed)
        if verbosity and (labeled.labels or labeled.reviews):
            self.stdout.write(f"Labeled as the demo annotators: {labeled.labels} labels, {labeled.reviews} reviews")
        for queue in queues:
            if verbosity:
                self.stdout.write(f"Labeling queue '{queue.name}': {queue.items.count()} items")
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(warning))
        summary = ", ".join(f"{p.label} {p.created} new ({p.skipped} already there)" for p in result.projects)
        self.stdout.write(f"Done in {result.seconds:.1f}s: {summary}.")
        if no_logins:
            return
        self.stdout.write(f"Demo logins for organization '{DEMO_ORG}':")
        retail_roles = dict(RETAIL_USERS)
        for username, role in DEMO_USERS:
            notes = [f"{retail_roles[username]} in '{RETAIL_ORG}' too"] if username in retail_roles else []
            if username == "admin":
                notes.append("staff for /admin/")
            extra = f"  ({'; '.join(notes)})" if notes else ""
            self.stdout.write(f"  {username:<10} role {role:<10} password {DEMO_PASSWORD}{extra}")
        self.stdout.write(f"Open {DEMO_URL}")
