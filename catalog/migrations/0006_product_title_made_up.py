from django.db import migrations, models


def mark_made_up_titles(apps, schema_editor) -> None:
    """Products imported before the flag: a title that reads as the import's own (colour and
    category, as catalog_rows.default_title makes it) was made up."""
    Product = apps.get_model("catalog", "Product")
    made_up = []
    rows = Product.objects.values_list("pk", "title", "colour", "category__name")
    for pk, title, colour, category in rows.iterator(chunk_size=5000):
        if title == f"{colour} {category}".strip().capitalize():
            made_up.append(pk)
    for start in range(0, len(made_up), 5000):
        Product.objects.filter(pk__in=made_up[start : start + 5000]).update(title_made_up=True)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_product_newest_first"),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="title_made_up",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(mark_made_up_titles, migrations.RunPython.noop),
    ]
