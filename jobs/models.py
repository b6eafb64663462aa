from django.conf import settings
from django.db import models


class PausedQueue(models.Model):
    """An operator paused this queue: its jobs wait, other queues keep running."""

    name = models.CharField(max_length=100, unique=True)
    paused_at = models.DateTimeField(auto_now_add=True)
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
