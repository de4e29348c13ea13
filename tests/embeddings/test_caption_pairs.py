import pytest

from embeddings.training import read_caption_pairs


def test_caption_pairs_join_columns_and_skip_rows_without_an_image(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.jpg").write_bytes(b"x")
    csv_path = tmp_path / "styles.csv"
    csv_path.write_text(
        "id,image,productDisplayName,baseColour\n"
        "1,images/1.jpg,Turtle Check Shirt,Navy Blue\n"
        "2,images/2.jpg,Missing picture,Red\n3,,No image,Red\n"
    )
    pairs = read_caption_pairs(csv_path, "image", ["productDisplayName", "baseColour"])
    assert pairs == [(tmp_path / "images" / "1.jpg", "Turtle Check Shirt, Navy Blue")]
    with pytest.raises(ValueError, match="lacks column"):
        read_caption_pairs(csv_path, "picture", ["productDisplayName"])
