"""`manage.py seed_demo`: the demo tenants, their people, a few thousand conversations, labeling
queues and a week of the approval loop."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from demo.banner import demo_logins
from demo.escalations import escalations_demo_seed
from demo.evaluation import evaluation_demo_seed
from demo.labeling import labeling_demo_labels_seed, labeling_demo_seed
from demo.scenarios import DEMO_ORG, DEMO_PROJECT, DEMO_URL
from demo.seed import demo_seed
from reviewapp.models import Project


class Command(BaseCommand):
    help = (
        "Create the demo organizations (Demo Airline with 6 users, Demo Retail), synthetic conversations, "
        "labeling queues, and the approval loop (ladders, a policy, a week of agent actions, an inbox). "
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
        started = time.monotonic()
        if verbosity:
            self.stdout.write(f"Seeding demo data (seed {seed})...")
        result = demo_seed(
            seed=seed,
            conversations=conversations,
            retail_conversations_count=retail_conversations,
            progress=self.stdout.write if verbosity else None,
        )
        # Labeling's demo queues sample the demo traffic through their backfill; the QA queue has
        # gold checks.
        support = Project.objects.get(organization__slug=DEMO_ORG, slug=DEMO_PROJECT)
        seeded = labeling_demo_seed(project=support, seed=seed)
        queues = seeded.queues
        if verbosity and seeded.gold:
            self.stdout.write(f"Gold checks added to the labeling queues: {seeded.gold}")
        # A first morning of labels (and a few reviews) on the QA queue, meeting its gold checks,
        # so its agreement and annotator pages show figures, gold accuracy included.
        labeled = labeling_demo_labels_seed(queue=queues[0], reviewer_username="engineer", seed=seed)
        if verbosity and (labeled.labels or labeled.reviews):
            self.stdout.write(f"Labeled as the demo annotators: {labeled.labels} labels, {labeled.reviews} reviews")
        for queue in queues:
            if verbosity:
                self.stdout.write(f"Labeling queue '{queue.name}': {queue.items.count()} items")
        # A golden dataset from the agreed items, frozen and tagged prod, with two gate runs.
        golden = evaluation_demo_seed(project=support, queue=queues[0], seed=seed)
        if verbosity and not golden.skipped:
            self.stdout.write(f"Golden dataset: {golden.items} items frozen as v1 (prod), {golden.runs} gate runs")
        # The approval loop: a week of agent actions, and an inbox due from now on.
        approvals = escalations_demo_seed(project=support, seed=seed, reference=timezone.now())
        if verbosity:
            if approvals.skipped:
                self.stdout.write("Approvals: the project has a policy already; no demo actions added")
            else:
                statuses = ", ".join(f"{n} {status}" for status, n in approvals.by_status.items())
                self.stdout.write(
                    f"Approvals: {approvals.created} agent actions ({statuses}; {approvals.linked} linked "
                    f"to conversations) in {approvals.seconds:.1f}s"
                )
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(warning))
        summary = ", ".join(f"{p.label} {p.created} new ({p.skipped} already there)" for p in result.projects)
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s: {summary}.")
        if no_logins:
            return
        # The same lines `serve` prints: who can sign in, and what each can try.
        for line in demo_logins():
            self.stdout.write(line)
        self.stdout.write(f"Open {DEMO_URL}")
