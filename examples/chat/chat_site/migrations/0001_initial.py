from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


def create_rooms(apps, schema_editor):
    Room = apps.get_model("chat_site", "Room")
    Room.objects.bulk_create([
        Room(name="lobby", title="Lobby", description="Say hello to everyone."),
        Room(name="random", title="Random", description="Anything goes."),
        Room(name="staff", title="Staff", description="For staff only.", staff_only=True),
    ])


class Migration(migrations.Migration):
    initial = True

    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Room",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.SlugField(max_length=64, unique=True)),
                ("title", models.CharField(max_length=100)),
                ("description", models.CharField(blank=True, max_length=200)),
                ("staff_only", models.BooleanField(default=False)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="Message",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.TextField(max_length=2000)),
                ("announcement", models.BooleanField(default=False)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("author", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                             to=settings.AUTH_USER_MODEL)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="messages",
                                           to="chat_site.room")),
            ],
            options={"ordering": ["pk"]},
        ),
        migrations.RunPython(create_rooms, migrations.RunPython.noop),
    ]
