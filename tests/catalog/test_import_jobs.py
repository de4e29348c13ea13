"""Catalog import jobs: what merchandisers' files do, good and bad."""

import csv
import io
from pathlib import Path

import pytest

from catalog.import_jobs import rejection_pages, rejections_csv, rerun_for_real, run_import_job
from catalog.models import Category, ImportJob, ImportRejection, Product

HEADER = "sku,title,category,colour,price,in_stock,image,season\n"


def rejected(job: ImportJob) -> dict[tuple[int, str], str]:
    return {(r.line, r.column): r.reason for r in job.rejections.all()}


def test_import_creates_products_with_stored_images_thumbnails_and_attributes(run_import, images):
    job = run_import(
        HEADER + "A1,Navy blazer,Outerwear,Navy,89.90,true,a.png,winter\n"
        "B1,White shirt,Tops,White,,no,b.png,\n",
        images_folder=str(images),
    )
    assert job.status == "succeeded", job.message
    assert (job.created, job.updated, job.unchanged, job.rejected) == (2, 0, 0, 0)
    blazer = Product.objects.get(sku="A1")
    assert blazer.category.name == "Outerwear" and str(blazer.price) == "89.90"
    assert blazer.attributes == {"season": "winter"}
    assert Path(blazer.image.path).is_file() and Path(blazer.thumbnail.path).is_file()
    assert len(blazer.image_sha256) == 64 and not blazer.title_made_up
    assert Product.objects.get(sku="B1").in_stock is False


def test_reupload_changes_nothing_and_a_corrected_file_updates_in_place(run_import, images):
    body = HEADER + "A1,Navy blazer,Outerwear,Navy,89.90,true,a.png,winter\n"
    run_import(body, images_folder=str(images))
    stamp = Product.objects.get().updated_at
    again = run_import(body, images_folder=str(images))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert Product.objects.get().updated_at == stamp
    corrected = run_import(body.replace("89.90", "79.90"), images_folder=str(images))
    assert (corrected.created, corrected.updated) == (0, 1)
    assert str(Product.objects.get(sku="A1").price) == "79.90"
    assert Product.objects.count() == 1


def test_bad_rows_are_reported_by_line_column_value_and_the_rest_imports(run_import, images):
    body = HEADER + (
        "A1,Navy blazer,Outerwear,Navy,89.90,true,a.png,\n"  # line 2: fine
        "B1,White shirt,Tops,White,-3,true,b.png,\n"  # 3: negative price
        "C1,Red scarf,Accessories,Red,cheap,true,c.png,\n"  # 4: not a number
        "D1,Lost,Tops,Red,1,true,missing.png,\n"  # 5: no such image
        "E1,Broken,Tops,Red,1,true,broken.jpg,\n"  # 6: corrupt image
        "A1,Navy blazer again,Outerwear,Navy,1,true,a.png,\n"  # 7: duplicate SKU
        ",No sku,Tops,Red,1,true,a.png,\n"  # 8: missing SKU
        "F1,Odd stock,Tops,Red,1,perhaps,a.png,\n"  # 9: bad in_stock
        '"G1","Shirt, with ""quotes""\nand a newline",Tops,Red,5,true,b.png,\n'  # 10-11: fine
        "H1,Escape,Tops,Red,5,true,../../secret.png,\n"  # 12: leaves the folder
    )
    job = run_import(body, images_folder=str(images))
    reasons = rejected(job)
    assert reasons.keys() == {
        (3, "price"),
        (4, "price"),
        (5, "image"),
        (6, "image"),
        (7, "sku"),
        (8, "sku"),
        (9, "in_stock"),
        (12, "image"),
    }
    assert "duplicate of line 2" in reasons[(7, "sku")]
    assert "not a readable image" in reasons[(6, "image")]
    assert "leaves the image folder" in reasons[(12, "image")]
    assert job.rejected == 8 and job.created == 2
    assert set(Product.objects.values_list("sku", flat=True)) == {"A1", "G1"}
    assert Product.objects.get(sku="G1").title == 'Shirt, with "quotes"\nand a newline'
    assert Product.objects.get(sku="A1").title == "Navy blazer"


def test_duplicates_are_found_across_chunks_without_holding_every_sku(run_import, settings):
    settings.OUTFITS_IMPORT_CHUNK_ROWS = 2
    body = "sku,category\nA,Tops\nB,Tops\nC,Tops\nA,Bags\nD,Tops\n"
    job = run_import(body)
    assert rejected(job) == {(5, "sku"): "duplicate of line 2"}
    assert Product.objects.get(sku="A").category.name == "Tops"
    assert job.created == 4


def test_a_mapping_reads_any_export_and_keeps_unmapped_columns(run_import, images):
    body = (
        "cod_modelo_color;des_filename;des_product_family;des_product_category;"
        "des_agrup_color_eng;des_fabric\n"
        "41085800-02;a.png;Trousers;Bottoms;WHITE;P-PLANA\n"
    )
    job = run_import(
        body,
        images_folder=str(images),
        column_mapping={
            "sku": "cod_modelo_color",
            "image": "des_filename",
            "category": "des_product_family",
            "group": "des_product_category",
            "colour": "des_agrup_color_eng",
        },
    )
    assert job.status == "succeeded", job.message
    product = Product.objects.get(sku="41085800-02")
    assert product.title == "White trousers"  # no title column: made from colour and category
    assert product.title_made_up  # and said so: it tells no twins apart
    assert product.category.group == "Bottoms"
    assert product.attributes == {"des_fabric": "P-PLANA"}
    assert job.delimiter == ";"


def test_a_style_column_groups_colourways_and_a_file_without_one_keeps_them(run_import):
    header = "sku,title,category,colour,style\n"
    run_import(header + "A1,Slim chinos,Trousers,Navy,CH-1\nA2,Slim chinos,Trousers,Sand,CH-1\n")
    assert list(Product.objects.values_list("style", flat=True)) == ["CH-1", "CH-1"]
    job = run_import("sku,title,category,colour\nA1,Slim chinos,Trousers,Black\n")
    assert (job.updated, job.rejected) == (1, 0)
    assert Product.objects.get(sku="A1").style == "CH-1"  # changed the colour, kept the style
    run_import(header + "A1,Slim chinos,Trousers,Black,\n")
    assert Product.objects.get(sku="A1").style == ""  # an empty cell clears it


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
def test_encodings_of_real_exports_are_detected(run_import, encoding):
    job = run_import("sku,title,category\nA1,Crème brûlée blouse,Tops\n", encoding=encoding)
    assert job.status == "succeeded", job.message
    assert Product.objects.get().title == "Crème brûlée blouse"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_detected(run_import, delimiter):
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter)
    writer.writerows(
        [["sku", "title", "category", "price"], ["A1", "Shirt, white", "Tops", "12.50"]]
    )
    job = run_import(text.getvalue())
    assert job.status == "succeeded", job.message
    assert Product.objects.get().title == "Shirt, white"


def test_bytes_invalid_in_the_detected_encoding_reject_only_their_row(run_import, settings):
    padding = "".join(f"P{i},Plain shirt number {i:06d},Tops\n" for i in range(40_000))
    content = (
        "sku,title,category\nE1,Crème blouse,Tops\n" + padding
    ).encode() + b"BAD,Caf\xe9 shirt,Tops\nOK,Fine,Tops\n"
    job = run_import(content)  # a UTF-8 file, with a byte past its first megabyte that is not
    assert job.encoding == "utf-8"
    assert list(rejected(job).values()) == ["contains bytes that are not valid utf-8"]
    assert Product.objects.filter(sku="OK").exists() and not Product.objects.filter(sku="BAD")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("title,price\nShirt,1\n", "lacks required column(s) sku, category"),
        ("sku;title\nA;B\n", "lacks required column(s) category"),
        ("sku,sku,category\nA,A,Tops\n", "repeats column(s) sku"),
    ],
)
def test_whole_file_problems_fail_the_job_clearly_and_write_nothing(run_import, content, message):
    job = run_import(content)
    assert job.status == "failed" and message in job.message
    assert Product.objects.count() == 0


def test_mapping_to_a_column_the_file_lacks_is_explained(run_import):
    job = run_import("id,category\n1,Tops\n", column_mapping={"sku": "ident"})
    assert job.status == "failed"
    assert "names column(s) ident" in job.message and "its columns are id, category" in job.message


def test_unknown_category_is_rejected_when_the_upload_may_not_create_categories(run_import):
    Category.objects.create(name="Tops")
    job = run_import("sku,category\nA,Tops\nB,Hats\n", create_categories=False)
    assert rejected(job) == {
        (3, "category"): "unknown category (this upload may not create categories)"
    }
    assert not Category.objects.filter(name="Hats").exists()


def test_report_cells_never_run_as_spreadsheet_formulas(run_import):
    job = run_import(
        "sku,category,price\nA,Tops,=cmd|' /C calc'!A0\nB,Tops,@SUM(1+1)\n+C,Tops,-2\n"
    )
    report = "".join(rejections_csv(job))
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[0] == ["line", "column", "value", "reason"]
    assert [row[2] for row in rows[1:]] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)", "'-2"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_the_report_reads_every_rejection_once_in_order_page_by_page(run_import):
    job = run_import("sku,category\nA,Tops\n")
    # Several rejections on one line, added out of order; pages that end inside a line.
    ImportRejection.objects.bulk_create(
        ImportRejection(job=job, line=line, column=f"c{n}", value="v", reason="r")
        for n, line in enumerate([5, 2, 2, 9, 2, 5, 7, 2])
    )
    everything = list(job.rejections.values_list("line", "column", "value", "reason"))
    pages = list(rejection_pages(job, size=3))
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [row for page in pages for row in page] == everything
    assert [line for line, *_ in everything] == [2, 2, 2, 2, 5, 5, 7, 9]


def test_oversized_images_are_refused_before_decoding(run_import, images, draw_image):
    draw_image(images / "huge.png", size=(10_000, 5_000))  # 50 Mpx: over the 40 Mpx limit
    job = run_import("sku,category,image\nA,Tops,huge.png\n", images_folder=str(images))
    assert "over the limit" in rejected(job)[(2, "image")]


def test_absolute_paths_must_lie_under_an_allowed_root(run_import, images, tmp_path, draw_image):
    outside = draw_image(tmp_path / "elsewhere" / "x.png")
    job = run_import(f"sku,category,image\nA,Tops,{outside}\nB,Tops,{images / 'a.png'}\n")
    assert "allowed import root" in rejected(job)[(2, "image")]
    assert Product.objects.get().sku == "B"


def test_a_dry_run_writes_nothing_and_applying_it_writes_what_it_said(run_import, images):
    Product.objects.create(sku="OLD", title="Old", category=Category.objects.create(name="Tops"))
    body = HEADER + "A1,Navy blazer,Outerwear,Navy,89.90,true,a.png,\nB1,Bad,Tops,,x,,,\n"
    dry = run_import(body, images_folder=str(images), dry_run=True, deactivate_missing=True)
    assert dry.status == "succeeded" and dry.message.startswith("Dry run")
    assert (dry.created, dry.updated, dry.rejected, dry.deactivated) == (1, 0, 1, 1)
    assert Product.objects.count() == 1 and not Category.objects.filter(name="Outerwear")
    real = run_import_job(rerun_for_real(dry).pk)
    assert (real.created, real.rejected, real.deactivated) == (1, 1, 1)
    assert Product.objects.get(sku="A1").active and not Product.objects.get(sku="OLD").active


def test_a_full_upload_deactivates_missing_products_and_never_deletes(run_import):
    run_import("sku,category\nA,Tops\nB,Tops\nC,Tops\n")
    job = run_import("sku,category\nA,Tops\nC,Tops\n", deactivate_missing=True)
    assert job.deactivated == 1
    assert dict(Product.objects.values_list("sku", "active")) == {"A": True, "B": False, "C": True}
    run_import("sku,category\nB,Tops\n")  # listed again: active again
    assert Product.objects.get(sku="B").active


def test_a_finished_job_run_again_does_nothing(run_import):
    job = run_import("sku,category\nA,Tops\n")
    assert run_import_job(job.pk).created == 1
    assert Product.objects.count() == 1


def test_an_interrupted_job_resumes_after_its_last_committed_chunk(run_import, settings):
    settings.OUTFITS_IMPORT_CHUNK_ROWS = 2
    job = run_import("sku,category\nA,Tops\nB,Tops\nC,Tops\nD,Tops\nE,Tops\n")
    # As if the worker had died after the first chunk and the job was found interrupted: rows
    # of later chunks are not there, and the claim is released.
    Product.objects.filter(sku__in=["C", "D", "E"]).delete()
    ImportJob.objects.filter(pk=job.pk).update(
        status="interrupted", claim_token="", resume_after_line=3, created=2
    )
    resumed = run_import_job(job.pk)
    assert resumed.status == "succeeded" and resumed.created == 5
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "B", "C", "D", "E"]


def test_an_import_refreshes_the_planner_statistics_of_the_product_table(run_import):
    """Without them PostgreSQL takes a freshly loaded product table for empty and scans it
    whole on every matches request."""
    from django.db import connection

    body = HEADER + "".join(f"S-{n},Shirt {n},Shirts,blue,10,yes,,summer\n" for n in range(30))
    job = run_import(body)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE relname = %s", [Product._meta.db_table]
        )
        estimated_rows = cursor.fetchone()[0]
    assert job.status == ImportJob.Status.SUCCEEDED
    assert estimated_rows == 30


def test_each_app_registers_its_own_row_importer_with_the_job_runner():
    from catalog.catalog_rows import CatalogRowImporter
    from catalog.import_jobs import ImportNotRun, importer_class
    from outfits.outfit_rows import OutfitRowImporter

    assert importer_class("catalog") is CatalogRowImporter
    assert importer_class("outfits") is OutfitRowImporter  # registered by outfits/apps.py
    with pytest.raises(ImportNotRun, match="No row importer is registered for 'shoes'"):
        importer_class("shoes")
