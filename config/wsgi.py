import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()


def warn_when_redis_is_down():
    """The web process starts without Redis; say so, since background work will wait."""
    from jobs.connection import is_available

    if not is_available():
        logging.getLogger("conveyor.web").warning(
            "Redis does not answer: requests that enqueue work get 503 until it is back"
        )


warn_when_redis_is_down()
