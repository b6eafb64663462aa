"""Error reports to Sentry, only when SENTRY_DSN is set (config/settings.py calls this).

sentry-sdk is imported here and nowhere else, so without a DSN it is never loaded. Its
Django integration reports a request's unhandled error; its RQ integration a job that
failed for good (not a try that RQ will retry), with the job's id, function and queue.
ERROR log lines become events too (sentry-sdk's logging integration, on by default).
"""

from django.core.exceptions import ImproperlyConfigured


def sentry_init(dsn, *, environment, traces_sample_rate):
    try:
        import sentry_sdk
        from sentry_sdk.integrations.django import DjangoIntegration
        from sentry_sdk.integrations.rq import RqIntegration
    except ImportError:
        raise ImproperlyConfigured(
            "SENTRY_DSN is set but sentry-sdk is not installed (requirements.txt pins the version tested here)"
        ) from None
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), RqIntegration()],
        traces_sample_rate=traces_sample_rate,
        # Request bodies, cookies and users' addresses stay here.
        send_default_pii=False,
    )
