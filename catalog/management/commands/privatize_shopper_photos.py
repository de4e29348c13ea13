"""manage.py privatize_shopper_photos"""

from django.core.management.base import BaseCommand

from catalog.shopper_photos import kept_photos_folder, move_public_kept_photos


class Command(BaseCommand):
    help = (
        "Move shoppers' photos kept by earlier versions (raw, with their EXIF, under "
        "MEDIA_ROOT/shopper-photos/, which is served publicly) to the private folder, "
        "re-encoded without metadata."
    )

    def handle(self, *args, **options) -> None:
        moved, unreadable = move_public_kept_photos()
        for path in unreadable:
            self.stderr.write(f"Left in place, not a readable image: {path}")
        self.stdout.write(
            self.style.SUCCESS(f"{moved} photo(s) moved to {kept_photos_folder()}, no metadata.")
        )
