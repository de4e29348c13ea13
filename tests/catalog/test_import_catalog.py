from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image

from catalog.csv_import import CsvFormatError
from catalog.models import Product
from catalog.services import import_catalog

HEADER = "sku,title,category,colour,price,in_stock,image,season\n"


def draw(path: Path, colour: str = "navy") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), colour).save(path)
    return path.name


def write_csv(folder: Path, body: str, header: str = HEADER, encoding: str = "utf-8") -> Path:
    path = folder / "products.csv"
    path.write_text(header + body, encoding=encoding)
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for name, colour in [("a.png", "navy"), ("b.png", "white"), ("c.png", "red")]:
        draw(tmp_path / name, colour)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return tmp_path


@pytest.mark.django_db
def test_import_creates_products_with_stored_images_and_extra_columns_as_attributes(images):
    csv_path = write_csv(
        images,
        "A1,Navy blazer,Outerwear,Navy,89.90,true,a.png,winter\n"
        "B1,White shirt,Tops,White,,no,b.png,\n",
    )
    report = import_catalog(csv_path)
    assert (report.created, report.updated, report.unchanged, report.rejected) == (2, 0, 0, [])
    blazer = Product.objects.get(sku="A1")
    assert blazer.category.name == "Outerwear" and str(blazer.price) == "89.90"
    assert blazer.attributes == {"season": "winter"}
    assert Path(blazer.image.path).is_file() and blazer.image.name.endswith(".jpg")
    shirt = Product.objects.get(sku="B1")
    assert shirt.price is None and shirt.in_stock is False


@pytest.mark.django_db
def test_reimport_changes_nothing_and_a_corrected_file_updates_in_place(images):
    body = "A1,Navy blazer,Outerwear,Navy,89.90,true,a.png,winter\n"
    import_catalog(write_csv(images, body))
    again = import_catalog(write_csv(images, body))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    corrected = import_catalog(write_csv(images, body.replace("89.90", "79.90")))
    assert (corrected.created, corrected.updated) == (0, 1)
    assert str(Product.objects.get(sku="A1").price) == "79.90"
    assert Product.objects.count() == 1


@pytest.mark.django_db
def test_bad_rows_are_reported_by_line_and_column_and_the_rest_imports(images):
    body = (
        "A1,Navy blazer,Outerwear,Navy,89.90,true,a.png,\n"  # line 2: fine
        "B1,White shirt,Tops,White,-3,true,b.png,\n"  # 3: negative price
        "C1,Red scarf,Accessories,Red,cheap,true,c.png,\n"  # 4: not a number
        "D1,Lost,Tops,Red,1,true,missing.png,\n"  # 5: no such image
        "E1,Broken,Tops,Red,1,true,broken.jpg,\n"  # 6: corrupt image
        "A1,Navy blazer again,Outerwear,Navy,1,true,a.png,\n"  # 7: duplicate SKU
        ",No sku,Tops,Red,1,true,a.png,\n"  # 8: missing SKU
        "F1,Odd stock,Tops,Red,1,perhaps,a.png,\n"  # 9: bad in_stock
        '"G1","Shirt, with ""quotes""\nand a newline",Tops,Red,5,true,b.png,\n'  # 10-11: fine
    )
    report = import_catalog(write_csv(images, body))
    rejected = {(row.line, row.column): row.reason for row in report.rejected}
    assert rejected.keys() == {
        (3, "price"),
        (4, "price"),
        (5, "image"),
        (6, "image"),
        (7, "sku"),
        (8, "sku"),
        (9, "in_stock"),
    }
    assert "duplicate of line 2" in rejected[(7, "sku")]
    assert "not a readable image" in rejected[(6, "image")]
    assert set(Product.objects.values_list("sku", flat=True)) == {"A1", "G1"}
    assert Product.objects.get(sku="G1").title == 'Shirt, with "quotes"\nand a newline'
    assert Product.objects.get(sku="A1").title == "Navy blazer"


@pytest.mark.django_db
def test_missing_required_column_and_empty_file_are_refused_whole(images):
    with pytest.raises(CsvFormatError, match="lacks required column"):
        import_catalog(write_csv(images, "A1,Navy,a.png\n", header="sku,title,image\n"))
    with pytest.raises(CsvFormatError, match="empty"):
        import_catalog(write_csv(images, "", header=""))
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_byte_order_mark_from_spreadsheets_is_understood(images):
    csv_path = write_csv(
        images, "A1,Navy blazer,Outerwear,Navy,1,true,a.png,\n", encoding="utf-8-sig"
    )
    assert import_catalog(csv_path).created == 1


@pytest.mark.django_db
def test_command_reports_the_summary_and_rejected_lines(images, capsys):
    csv_path = write_csv(
        images, "A1,Navy,Outerwear,Navy,1,true,a.png,\nB1,White,Tops,White,x,true,b.png,\n"
    )
    call_command("import_catalog", str(csv_path))
    out, err = capsys.readouterr()
    assert "1 created, 0 updated, 0 unchanged, 1 rejected" in out
    assert "line 3: price='x': not a number" in err
