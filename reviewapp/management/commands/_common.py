from django.core.management.base import CommandError

from reviewapp.models import Organization, Project


def organization_or_fail(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise CommandError(f"No organization '{slug}'. Create it with: manage.py create_org {slug}")
    return organization


def project_or_fail(organization: Organization, slug: str) -> Project:
    project = Project.objects.filter(organization=organization, slug=slug).first()
    if project is None:
        raise CommandError(
            f"No project '{slug}' in '{organization.slug}'. Create it with: "
            f"manage.py create_project {organization.slug} {slug}"
        )
    return project
