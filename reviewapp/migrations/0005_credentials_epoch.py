import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def _legacy_fingerprint_matches(fingerprint, password_hash):
    """The check tokens used before this migration: an HMAC of the owner's password hash under
    SECRET_KEY or one of its fallbacks (inlined: the code it came from is gone)."""
    from django.utils.crypto import constant_time_compare, salted_hmac

    if not fingerprint:
        return False
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        expected = salted_hmac(
            "reviewapp.tokens.password_fingerprint", password_hash, secret=secret, algorithm="sha256"
        ).hexdigest()
        if constant_time_compare(fingerprint, expected):
            return True
    return False


def epoch_existing_tokens(apps, schema_editor):
    """Every user starts at epoch 0 (no credentials row), so a token that still matched its
    owner's password keeps working under epoch 0. One whose password had changed since it was
    issued was already dead: it gets -1, which no epoch ever equals, so it stays dead."""
    PersonalToken = apps.get_model("reviewapp", "PersonalToken")
    ended = [
        token.pk
        for token in PersonalToken.objects.filter(revoked_at__isnull=True).select_related("user").iterator()
        if not _legacy_fingerprint_matches(token.password_fingerprint, token.user.password)
    ]
    for start in range(0, len(ended), 500):
        PersonalToken.objects.filter(pk__in=ended[start : start + 500]).update(credentials_epoch=-1)


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("reviewapp", "0004_conversation_project_id_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserCredentials",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="credentials",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("epoch", models.BigIntegerField(default=0)),
                ("changed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name_plural": "user credentials",
            },
        ),
        migrations.AddField(
            model_name="personaltoken",
            name="credentials_epoch",
            field=models.BigIntegerField(
                default=0,
                help_text="The owner's credentials epoch when issued; -1 for a token whose password had already changed.",
            ),
        ),
        migrations.RunPython(epoch_existing_tokens, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="personaltoken",
            name="password_fingerprint",
        ),
    ]
