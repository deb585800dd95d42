"""Documents the embedder backends' end-to-end tests index: two English, one Chinese, so a
question in either language must find its own document."""

DOCS = {
    "bread.txt": "Baking bread at home is simple. Mix flour, water, salt and yeast, "
    "let the dough rise for two hours, then bake it in a hot oven for forty minutes.",
    "rockets.txt": "The rocket launch was delayed because of strong winds. Engineers will "
    "try again next week once the weather over the launch site improves.",
    "changjiang.txt": "长江三角洲区域一体化发展是国家战略。上海、江苏、浙江和安徽四地联合印发了"
    "物流降本增效方案，推动跨省域交通运输互联互通。",
}
