"""Create (or reset) the demo's two users and print their passwords."""
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERS = (("alice", True), ("bob", False))  # (username, is_staff)


class Command(BaseCommand):
    help = "Create the users alice (staff) and bob with fresh random passwords, and print them."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="use this password for both instead of random ones")

    def handle(self, *args, password=None, **options):
        User = get_user_model()
        for username, staff in USERS:
            user, _ = User.objects.get_or_create(username=username)
            secret = password or secrets.token_urlsafe(9)
            user.set_password(secret)
            user.is_staff = staff
            user.save()
            role = "staff" if staff else "member"
            self.stdout.write(f"  {username:6} password {secret}   ({role})")
