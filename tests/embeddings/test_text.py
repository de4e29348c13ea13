from embeddings.engine.text import describe


def test_a_product_is_described_by_its_words_not_its_codes():
    attributes = {
        "cod_color_code": "02",
        "des_fabric": "P-PLANA",
        "des_line": "SHE",
        "des_product_type": "Trousers",
        "des_filename": "images/" + "x" * 70 + ".jpg",
        "stock": 3,
    }
    assert (
        describe("Offwhite trousers", "WHITE", "Trousers", attributes)
        == "offwhite trousers, white, trousers, p-plana, she"
    )
    assert describe("", "", "Bags", {}) == "bags"
