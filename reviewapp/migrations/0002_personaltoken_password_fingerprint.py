from django.db import migrations, models


def fingerprint_existing_tokens(apps, schema_editor):
    """Tokens issued before this migration are bound to their owner's current password, so they
    keep working until it changes (an empty fingerprint would end them all at once)."""
    from django.utils.crypto import salted_hmac

    def password_fingerprint(password_hash):
        # What reviewapp.tokens computed then (0005 replaced fingerprints with an epoch).
        return salted_hmac("reviewapp.tokens.password_fingerprint", password_hash, algorithm="sha256").hexdigest()

    PersonalToken = apps.get_model("reviewapp", "PersonalToken")
    for token in PersonalToken.objects.filter(revoked_at__isnull=True).select_related("user").iterator():
        token.password_fingerprint = password_fingerprint(token.user.password)
        token.save(update_fields=["password_fingerprint"])


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="personaltoken",
            name="password_fingerprint",
            field=models.CharField(
                blank=True, default="", help_text="HMAC of the owner's password hash when issued.", max_length=64
            ),
        ),
        migrations.RunPython(fingerprint_existing_tokens, migrations.RunPython.noop),
    ]
