"""Category names in merchandisers' files: one differing only by case is the category already
there, and distinct names that make the same slug each get their own page."""

from catalog.models import Category, ImportJob, Product


def category_of(sku: str) -> str:
    return Product.objects.select_related("category").get(sku=sku).category.name


def test_a_category_differing_only_by_case_is_the_existing_one(run_import):
    first = run_import("sku,category,group\nA,Tops,Upper\n")
    assert first.status == ImportJob.Status.SUCCEEDED, first.message
    later = run_import("sku,category,group\nB,TOPS,\nC,tops,Upper body\nD,Tops,\n")
    assert later.status == ImportJob.Status.SUCCEEDED, later.message
    assert (later.created, later.rejected) == (3, 0)
    assert list(Category.objects.values_list("name", "slug", "group")) == [
        ("Tops", "tops", "Upper body")  # the first name kept; a given group still updates it
    ]
    assert {category_of(sku) for sku in "ABCD"} == {"Tops"}


def test_names_differing_only_by_case_in_one_file_make_one_category(run_import):
    job = run_import("sku,category\nA,JEANS\nB,Jeans\nC,jeans\n")
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert (job.created, job.rejected) == (3, 0)
    assert list(Category.objects.values_list("name", flat=True)) == ["JEANS"]


def test_a_dry_run_counts_case_variants_as_the_existing_category(run_import):
    run_import("sku,category\nA,Tops\n")
    dry = run_import("sku,category\nB,TOPS\n", dry_run=True)
    assert (dry.status, dry.created, dry.rejected) == (ImportJob.Status.SUCCEEDED, 1, 0)
    real = run_import(
        "sku,category\nB,TOPS\n", create_categories=False
    )  # no new category is needed
    assert (real.status, real.created, real.rejected) == (ImportJob.Status.SUCCEEDED, 1, 0)
    assert category_of("B") == "Tops"


def test_distinct_names_with_the_same_slug_get_their_own_categories_and_pages(run_import, client):
    job = run_import("sku,category\nA,T-shirts\nB,T shirts\nC,Юбки\nD,Шубы\nE,T  shirts\n")
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert (job.created, job.rejected) == (5, 0)
    slugs = dict(Category.objects.values_list("name", "slug"))
    assert len(slugs) == 5 and len(set(slugs.values())) == 5
    assert slugs["T-shirts"] == "t-shirts" and slugs["T shirts"] == "t-shirts-2"
    for sku, name in [("A", "T-shirts"), ("B", "T shirts"), ("C", "Юбки"), ("D", "Шубы")]:
        page = client.get("/", {"category": slugs[name]})
        assert page.status_code == 200
        assert [p.sku for p in page.context["page"].object_list] == [sku]
