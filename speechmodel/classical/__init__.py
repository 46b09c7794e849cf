"""Classical baselines: utterance statistics + scikit-learn classifiers.

The seeds' recognisers, made reproducible: librosa statistics per utterance
(``features``), a registry of scaled scikit-learn classifiers
(``classifiers``), speaker-grouped grid search (``grid_search``), one outer
fold of an experiment (``experiment``), probability ensembles
(``ensemble``) and saving without pickle (``persistence``).

The search function is ``speechmodel.classical.grid_search.grid_search``
(not re-exported here, so that the name keeps meaning the module).
"""

from speechmodel.classical.classifiers import (
    ClassicalModel,
    PathPredictions,
    available_classifiers,
    build_pipeline,
    register_classifier,
)
from speechmodel.classical.ensemble import (
    ProbabilityRun,
    ensemble_probabilities,
    evaluate_run,
)
from speechmodel.classical.experiment import run_classical_fold
from speechmodel.classical.features import (
    ClassicalFeatureConfig,
    FeatureFailure,
    FeatureMatrix,
    compute_features,
    extract_features,
    feature_names,
)
from speechmodel.classical.grid_search import (
    GridSearchResult,
    GridSpec,
    default_grid_path,
    load_grid,
)
from speechmodel.classical.persistence import (
    UnsafeModelError,
    load_model,
    read_metadata,
    save_model,
)
