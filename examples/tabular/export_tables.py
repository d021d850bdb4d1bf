"""Write the three example tables and their feature YAMLs from data that ships in packages.

    python examples/tabular/export_tables.py        # needs scikit-learn, pandas, palmerpenguins

The outputs are committed, so nothing here runs at set-up or run time. Descriptions are ours,
written from the datasets' documentation; they are what the teacher reads when asked for scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.datasets import load_breast_cancer, load_wine

HERE = Path(__file__).resolve().parent

NUCLEUS = {
    "radius": "distance from the centre of a cell nucleus to its perimeter",
    "texture": "standard deviation of grey-scale values inside the nucleus",
    "perimeter": "perimeter of the nucleus",
    "area": "area of the nucleus",
    "smoothness": "local variation in radius lengths along the nucleus outline",
    "compactness": "perimeter squared divided by area, minus 1",
    "concavity": "severity of concave portions of the nucleus contour",
    "concave points": "number of concave portions of the nucleus contour",
    "symmetry": "symmetry of the nucleus",
    "fractal dimension": "'coastline approximation' of the outline, minus 1",
}
STATISTIC = {
    "mean": "mean over the nuclei in the image of the {}",
    "error": "standard error over the nuclei in the image of the {}",
    "worst": "mean of the three largest values in the image of the {}",
}

WINE = {
    "alcohol": "alcohol content (% vol)",
    "malic_acid": "malic acid (g/l)",
    "ash": "ash (g/l)",
    "alcalinity_of_ash": "alkalinity of ash",
    "magnesium": "magnesium (mg/l)",
    "total_phenols": "total phenols",
    "flavanoids": "flavanoid phenols",
    "nonflavanoid_phenols": "non-flavanoid phenols",
    "proanthocyanins": "proanthocyanins",
    "color_intensity": "colour intensity",
    "hue": "hue",
    "od280/od315_of_diluted_wines": "OD280/OD315 absorbance ratio of the diluted wine (protein content)",
    "proline": "proline, an amino acid (mg/l)",
}

PENGUINS = {
    "island": ("island in the Palmer Archipelago (Antarctica) where the penguin was observed", True),
    "bill_length_mm": ("length of the bill (culmen) in millimetres", False),
    "bill_depth_mm": ("depth of the bill (culmen) in millimetres", False),
    "flipper_length_mm": ("flipper length in millimetres", False),
    "body_mass_g": ("body mass in grams", False),
    "sex": ("sex of the penguin", True),
}


def write(name: str, frame: pd.DataFrame, spec: dict[str, Any]) -> None:
    frame.to_csv(HERE / f"{name}.csv", index=False)
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110)
    (HERE / f"{name}.features.yaml").write_text(text, encoding="utf-8")


def breast_cancer() -> None:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["diagnosis"] = ["malignant" if t == 0 else "benign" for t in data.target]
    features = []
    for column in data.feature_names:
        if column.endswith(" error"):
            statistic, measurement = "error", column.removesuffix(" error")
        else:
            statistic, measurement = column.split(" ", 1)
        features.append({"name": str(column), "description": STATISTIC[statistic].format(NUCLEUS[measurement])})
    spec = {
        "task": "Predict whether a breast mass is malignant or benign from measurements of the cell nuclei in a"
        " digitised image of a fine-needle aspirate of the mass.",
        "target": "diagnosis",
        "positive": "malignant",
        "features": features,
    }
    write("breast_cancer", frame, spec)


def wine() -> None:
    data = load_wine(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["cultivar"] = ["cultivar 1" if t == 0 else "other" for t in data.target]
    spec = {
        "task": "Three grape cultivars grown in the same region of Italy; predict from the chemical analysis of a wine"
        " whether it was made from cultivar 1 rather than one of the other two.",
        "target": "cultivar",
        "positive": "cultivar 1",
        "features": [{"name": str(column), "description": WINE[str(column)]} for column in data.feature_names],
    }
    write("wine", frame, spec)


def penguins() -> None:
    from palmerpenguins import load_penguins

    frame = load_penguins().drop(columns="year")
    frame["species"] = ["Adelie" if s == "Adelie" else "other" for s in frame["species"]]
    spec = {
        "task": "Predict whether a penguin from the Palmer Archipelago is an Adelie penguin (rather than a Chinstrap"
        " or Gentoo penguin) from where it was seen and its body measurements.",
        "target": "species",
        "positive": "Adelie",
        "features": [
            {"name": name, "description": text, **({"categorical": True} if categorical else {})}
            for name, (text, categorical) in PENGUINS.items()
        ],
    }
    write("penguins", frame[[*PENGUINS, "species"]], spec)


if __name__ == "__main__":
    breast_cancer()
    wine()
    penguins()
