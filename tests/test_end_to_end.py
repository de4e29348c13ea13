"""From a generated catalog to "Goes well with" on the product page and in the REST API."""

import math
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog.models import Product
from embeddings.engine.artifacts import read_manifest
from embeddings.models import ModelVersion, TrainingRun


def test_training_writes_a_complete_active_version(trained_shop, settings):
    manifest = read_manifest(Path(settings.OUTFITS_MODEL_DIR) / trained_shop.directory)
    assert manifest["item_count"] == Product.objects.count()
    assert manifest["backbone"] == "outfits-tiny"
    assert manifest["pretrained_sha256"]
    assert {
        "head.safetensors",
        "item_vectors.npy",
        "items.json",
        "pair_weights.npz",
        "neighbours.npy",
    } <= manifest["files"].keys()
    assert manifest["category_pairs_weighted"] > 0  # the type-aware space is served
    # The default scorer is "auto": the outfit-level model is trained too, and served only when
    # it fills the held-out blanks better.
    assert manifest["seconds"].keys() == {
        "embedding",
        "training",
        "outfit model",
        "evaluating",
        "indexing",
    }
    served = manifest["metrics"]["scorer"]
    assert manifest["scorer"]["kind"] == served
    assert ("outfit_model.npz" in manifest["files"]) == (served == "outfit_transformer")
    assert 0 <= trained_shop.metrics["fitb"] <= 1 and trained_shop.metrics["fitb_questions"] > 0
    metrics = trained_shop.metrics  # the blend, fitted ("auto"): finite weights of every signal
    blend = [metrics[f"{name}_weight"] for name in ("cooccurrence", "second_order", "overlap")]
    blend += metrics["exposure_weights"]
    assert len(blend) == 6 and all(math.isfinite(w) for w in blend)
    run = TrainingRun.objects.get()
    assert run.status == "succeeded" and run.model_version == trained_shop


def test_a_fixed_blend_weight_is_used_as_given(trained_shop, settings):
    settings.OUTFITS_COOCCURRENCE_WEIGHT = 0.0
    call_command("train", epochs=1)
    metrics = ModelVersion.objects.latest().metrics
    assert metrics["cooccurrence_weight"] == 0.0
    assert metrics["fitb"] == metrics["fitb_content_only"]  # no blend: the same scores


def test_computed_neighbours_can_be_turned_off(trained_shop, settings):
    settings.OUTFITS_COMPUTED_NEIGHBOURS = 0
    call_command("train", epochs=1)
    manifest = read_manifest(
        Path(settings.OUTFITS_MODEL_DIR) / ModelVersion.objects.latest().directory
    )
    assert "neighbours.npy" not in manifest["files"] and "items.json" in manifest["files"]


def test_unchanged_images_are_not_embedded_again(trained_shop, settings, small_catalog):
    directory = Path(settings.OUTFITS_MODEL_DIR)
    first = read_manifest(directory / trained_shop.directory)
    assert first["images_embedded"] == Product.objects.count()
    call_command("import_catalog", str(small_catalog.products_csv))  # the same file again
    call_command("train", epochs=1)
    second = ModelVersion.objects.latest()
    assert read_manifest(directory / second.directory)["images_embedded"] == 0


def test_api_matches_come_from_other_categories_never_the_product_itself(
    storefront, client, trained_shop
):
    checked = 0
    for product in Product.objects.select_related("category"):
        response = storefront.get(f"/api/v1/products/{product.sku}/matches/")
        assert response.status_code == 200
        data = response.json()
        assert data["sku"] == product.sku and data["model_version"] == trained_shop.name
        for group in data["groups"]:
            assert group["category"] != product.category.name
            assert group["matches"], "empty groups are left out"
            scores = [match["score"] for match in group["matches"]]
            assert scores[0] == max(scores)  # best first; then diversity has its say
            for match in group["matches"]:
                assert match["sku"] != product.sku
                assert match["category"] == group["category"]
                assert match["image_url"].startswith("http://testserver/media/")
                checked += 1
    assert checked > Product.objects.count()  # most products got several matches


def test_product_page_shows_goes_well_with_panels_with_images_and_links(
    storefront, client, trained_shop
):
    top = Product.objects.filter(category__name="Tops").first()
    api = storefront.get(f"/api/v1/products/{top.sku}/matches/").json()
    page = client.get(top.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200 and "Goes well with" in html
    for group in api["groups"]:
        assert f">{group['category']}</h3>" in html
        for match in group["matches"]:
            assert reverse("shop:product-detail", args=[match["sku"]]) in html
    assert html.count('loading="lazy"') >= sum(len(g["matches"]) for g in api["groups"])


def test_out_of_stock_and_inactive_products_are_never_recommended(storefront, trained_shop):
    top = Product.objects.filter(category__name="Tops").first()
    first = storefront.get(f"/api/v1/products/{top.sku}/matches/").json()["groups"][0]["matches"][0]
    Product.objects.filter(sku=first["sku"]).update(in_stock=False)
    again = storefront.get(f"/api/v1/products/{top.sku}/matches/").json()
    assert first["sku"] not in {m["sku"] for g in again["groups"] for m in g["matches"]}
    Product.objects.filter(sku=top.sku).update(active=False)
    assert storefront.get(f"/api/v1/products/{top.sku}/matches/").status_code == 404


def test_unknown_sku_is_404_and_an_untrained_shop_says_so(storefront, client, small_catalog):
    missing = storefront.get("/api/v1/products/NOPE/matches/")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "unknown_sku",
        "message": "No active product with SKU 'NOPE'.",
    }
    call_command("import_catalog", str(small_catalog.products_csv))
    product = Product.objects.first()
    data = storefront.get(f"/api/v1/products/{product.sku}/matches/").json()
    assert data["rec_id"].startswith("0.")  # no model version
    assert {k: v for k, v in data.items() if k != "rec_id"} == {
        "sku": product.sku,
        "model_version": None,
        "in_model": False,
        "matches_pending": False,  # no version to refresh it into
        "from_words": False,
        "category_fallback": None,
        "experiment": None,  # no A/B test runs
        "arm": None,
        "groups": [],
    }
    page = client.get(product.get_absolute_url()).content.decode()
    assert "coming soon" in page and "Staff:" not in page  # a shopper is told no more
    client.force_login(get_user_model().objects.create_superuser("staff", "s@x.org", "pw"))
    page = client.get(product.get_absolute_url()).content.decode()
    assert "Staff: no model is active yet" in page  # staff are told what to do


def test_product_list_filters_by_category_and_searches_titles(client, db, small_catalog):
    call_command("import_catalog", str(small_catalog.products_csv))
    bags = client.get("/?category=bags").content.decode()
    bag = Product.objects.filter(category__name="Bags").first()
    shoe = Product.objects.filter(category__name="Shoes").first()
    assert bag.title in bags and shoe.get_absolute_url() not in bags
    found = client.get("/", {"q": shoe.title}).content.decode()
    assert shoe.get_absolute_url() in found


def test_training_can_fine_tune_the_last_image_blocks(trained_shop, settings, capsys):
    call_command("train", epochs=1, unfreeze_blocks=1)
    version = ModelVersion.objects.latest()
    manifest = read_manifest(Path(settings.OUTFITS_MODEL_DIR) / version.directory)
    assert version != trained_shop and manifest["unfrozen_blocks"] == 1
    assert "image_tower_top.safetensors" in manifest["files"]
    assert "Time:" in capsys.readouterr().out
    # the offline backbone has 4 image blocks: unfreezing them all is refused, nothing changes
    with pytest.raises(Exception, match="Can unfreeze 1 to 3 of 4 blocks"):
        call_command("train", epochs=1, unfreeze_blocks=4)
    assert ModelVersion.objects.latest() == version


def test_failed_training_records_why_and_keeps_the_active_version(trained_shop, settings):
    settings.OUTFITS_PRETRAINED = "/nowhere/backbone.safetensors"
    with pytest.raises(Exception, match="OUTFITS_PRETRAINED"):
        call_command("train")
    run = TrainingRun.objects.latest("created_at")
    assert run.status == "failed" and "pretrain_backbone" in run.message
    assert ModelVersion.objects.get(is_active=True) == trained_shop
    assert len(list(Path(settings.OUTFITS_MODEL_DIR).iterdir())) == 1  # nothing half-written


def test_pretrain_backbone_command_writes_a_loadable_checkpoint(
    db, settings, small_catalog, capsys
):
    call_command("import_catalog", str(small_catalog.products_csv))
    # A related domain's image-caption pairs, as in fashion-product-images/styles.csv.
    pairs = small_catalog.products_csv.parent / "styles.csv"
    pairs.write_text(
        "id,image,productDisplayName,baseColour\n"
        "1,images/TOP-0001.jpg,Navy Shirt,Navy\n2,images/missing.jpg,Gone,Red\n"
    )
    # Two source domains: one naming its caption columns, one taking the default columns.
    second = small_catalog.products_csv.parent / "second.csv"
    second.write_text("id,image,productDisplayName\n1,images/TOP-0002.jpg,Black Top\n")
    call_command(
        "pretrain_backbone",
        "--epochs=1",
        f"--pairs={pairs}:productDisplayName,baseColour",
        f"--pairs={second}",
    )
    out = capsys.readouterr().out
    assert f"1 extra image-caption pairs from {pairs}" in out
    assert f"1 extra image-caption pairs from {second}" in out
    from embeddings.engine.backbone import load_backbone

    assert load_backbone("outfits-tiny", settings.OUTFITS_PRETRAINED).pretrained


def test_pretrain_backbone_builds_the_configured_architecture(db, settings, small_catalog):
    from embeddings.engine.backbone import BackboneUnavailable, load_backbone

    call_command("import_catalog", str(small_catalog.products_csv))
    settings.OUTFITS_BACKBONE = "outfits-tiny-128"
    call_command("pretrain_backbone", "--epochs=1")
    loaded = load_backbone("outfits-tiny-128", settings.OUTFITS_PRETRAINED)
    assert loaded.pretrained and loaded.model.visual.image_size == (128, 128)
    with pytest.raises(BackboneUnavailable, match="size mismatch"):  # not the default's shape
        load_backbone("outfits-tiny", settings.OUTFITS_PRETRAINED)


def test_pretrain_backbone_refuses_an_architecture_it_cannot_build(db, settings, small_catalog):
    call_command("import_catalog", str(small_catalog.products_csv))
    settings.OUTFITS_BACKBONE = "ViT-B-32"
    with pytest.raises(CommandError, match="OUTFITS_BACKBONE='ViT-B-32' is not one of"):
        call_command("pretrain_backbone", "--epochs=1")
    assert not Path(settings.OUTFITS_PRETRAINED).exists()


def test_evaluate_command_scores_task_files_with_the_active_model(trained_shop, tmp_path, capsys):
    import json

    from outfits.models import Outfit

    outfits = [
        [item.product for item in outfit.items.select_related("product__category")]
        for outfit in Outfit.objects.prefetch_related("items")[:6]
    ]
    questions, lines = [], []
    for items in outfits:
        blank = items[-1]
        wrong = list(
            Product.objects.filter(category=blank.category)
            .exclude(pk__in=[p.pk for p in items])
            .values_list("sku", flat=True)[:3]
        )
        questions.append(
            {
                "question": [p.sku for p in items[:-1]],
                "answers": [blank.sku, *wrong],
                "blank_position": len(items),
                "category": blank.category.name,
            }
        )
        lines.append("1 " + " ".join(p.sku for p in items))
        lines.append("0 " + " ".join([p.sku for p in items[:-1]] + [wrong[0]]))
    (tmp_path / "fitb.json").write_text(json.dumps(questions))
    (tmp_path / "compat.txt").write_text("\n".join(lines))
    call_command("evaluate", fitb=tmp_path / "fitb.json", compat=tmp_path / "compat.txt", json=True)
    results = json.loads(capsys.readouterr().out)
    assert results["model_version"] == trained_shop.name
    assert results["fitb_questions"] == 6 and 0 <= results["fitb_accuracy"] <= 1
    assert results["compatibility_outfits"] == 12 and 0 <= results["compatibility_auc"] <= 1
    assert results["recall_questions"] == 6 and set(results["recall_at"]) == {"10", "30", "50"}
    call_command("evaluate", fitb=tmp_path / "fitb.json")
    assert "FITB accuracy" in capsys.readouterr().out
