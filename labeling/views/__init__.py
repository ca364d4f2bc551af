"""Browser pages for labeling, one module per page family: the annotator's queue list
(`queues`), the labeling page (`work`), "my work" (`mine`), and the engineer's review and
statistics pages. They call the same selectors and services as labeling/apis, so the browser
and the API cannot drift; form parsing and presentation are in labeling/forms.py (pure).

Every page is re-exported here, so `labeling.urls` names `views.work`."""

from labeling.views.mine import RECENT_LABELS, my_work
from labeling.views.queue_editor import queue_active, queue_edit, queue_new, sampling_preview
from labeling.views.queues import queue_list
from labeling.views.review import review_item, review_list
from labeling.views.rubrics import build, rubric_edit, rubric_history, rubric_new, rubric_preview
from labeling.views.statistics import agreement, annotators, statistics_refresh, statistics_status
from labeling.views.work import NOTICE_EVENT, comment, draft, edit, next_panel, skip, submit, work

__all__ = [
    "NOTICE_EVENT",
    "RECENT_LABELS",
    "agreement",
    "annotators",
    "build",
    "comment",
    "draft",
    "edit",
    "my_work",
    "next_panel",
    "queue_active",
    "queue_edit",
    "queue_list",
    "queue_new",
    "review_item",
    "review_list",
    "rubric_edit",
    "rubric_history",
    "rubric_new",
    "rubric_preview",
    "sampling_preview",
    "skip",
    "statistics_refresh",
    "statistics_status",
    "submit",
    "work",
]
