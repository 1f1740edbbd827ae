from liveblog.rendering import render_markdown


def test_markdown_renders_common_formatting():
    html = render_markdown("**bold** *it* ~~gone~~\n\n- a\n- b\n\n[site](https://example.org)")
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html and "<s>gone</s>" in html
    assert "<ul>\n<li>a</li>" in html
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow ugc">site</a>' in html


def test_raw_html_is_escaped_not_rendered():
    html = render_markdown("<script>alert(1)</script><iframe src=x></iframe>")
    assert "<script" not in html and "<iframe" not in html
    assert "&lt;script&gt;" in html


def test_dangerous_links_and_images_are_removed():
    html = render_markdown("[a](javascript:alert(1)) [b](data:text/html,x) ![i](https://x/y.png)")
    assert 'href="javascript' not in html and 'href="data' not in html
    assert "<img" not in html  # no third-party images: they would track readers
    assert '<a href="https://x/y.png" rel="noopener noreferrer nofollow ugc">i</a>' in html
