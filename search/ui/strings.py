"""Every string the page shows, in Amharic and English: one catalogue, no literals in app.py.

Terms are used consistently: ፍለጋ/ፈልግ (search), ውጤት (result), ሰነድ (document), ክፍል (passage),
ስብስብ (collection = index), እርከን (stage), ደረጃ (rank), ነጥብ (score), ቃል (keyword),
ትርጉም (meaning), ዳግም መደርደር (reranking), ጥምር (fused).

Example::

    t("search_button", "am")                 # 'ፈልግ'
    t("results_count", "en", n=10)           # '10 results'
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["am", "en"]
LANGS: tuple[Lang, ...] = ("am", "en")
LANG_NAMES = {"am": "አማርኛ", "en": "English"}

STRINGS: dict[str, dict[str, str]] = {
    # -- page, header ------------------------------------------------------------------------------
    "page_title": {"en": "Amharic search", "am": "የአማርኛ ፍለጋ"},
    "tagline": {"en": "Search Amharic documents by their words and by their meaning.",
                "am": "የአማርኛ ሰነዶችን በቃላቸውና በትርጉማቸው ይፈልጉ።"},
    "lang_label": {"en": "Language", "am": "ቋንቋ"},
    "label_sep": {"en": ": ", "am": "፦ "},  # between a label and its value (a source line, About this collection)
    "view_label": {"en": "View", "am": "እይታ"},
    "view_simple": {"en": "Simple", "am": "ቀላል"},
    "view_expert": {"en": "Expert", "am": "የባለሙያ"},
    # -- filters, dates, export ------------------------------------------------------------------
    "filters_title": {"en": "Filters", "am": "ማጣሪያዎች"},
    "filter_any": {"en": "Any", "am": "ማንኛውም"},
    "filter_years": {"en": "{field}: years ({era})", "am": "{field}፦ ዓመታት ({era})"},
    "era_ethiopian": {"en": "E.C.", "am": "ዓ.ም."},
    "era_gregorian": {"en": "Gregorian", "am": "እ.ኤ.አ."},
    "date_label": {"en": "date", "am": "ቀን"},
    "calendar_label": {"en": "Dates in", "am": "ቀኖች በ"},
    "calendar_ethiopian": {"en": "Ethiopian calendar", "am": "ኢትዮጵያ ዘመን አቆጣጠር"},
    "calendar_gregorian": {"en": "Gregorian calendar", "am": "ግሪጎሪያን ዘመን አቆጣጠር"},
    "facet_count": {"en": "{value} ({n})", "am": "{value} ({n})"},
    "sort_label": {"en": "Order", "am": "ቅደም ተከተል"},
    "sort_relevance": {"en": "Most relevant", "am": "በተዛማጅነት"},
    "sort_date_desc": {"en": "Newest first", "am": "አዲሱ መጀመሪያ"},
    "sort_date_asc": {"en": "Oldest first", "am": "የቆየው መጀመሪያ"},
    "years_facet": {"en": "By year", "am": "በዓመት"},
    "download_csv": {"en": "Download CSV", "am": "CSV አውርድ"},
    "download_json": {"en": "Download JSON", "am": "JSON አውርድ"},
    "more_results": {"en": "More results", "am": "ተጨማሪ ውጤቶች"},
    "bad_filter": {"en": "This filter cannot be applied: {message}", "am": "ይህ ማጣሪያ ሊተገበር አልቻለም፦ {message}"},
    # -- search box ---------------------------------------------------------------------------------
    "query_label": {"en": "Search", "am": "ፍለጋ"},
    "query_placeholder": {"en": "For example: የቡና ምርት", "am": "ለምሳሌ፦ የቡና ምርት"},
    "search_button": {"en": "Search", "am": "ፈልግ"},
    "examples_label": {"en": "Try an example:", "am": "ምሳሌ ይሞክሩ፦"},
    "examples_more": {"en": "Example searches", "am": "የፍለጋ ምሳሌዎች"},
    "enter_to_search": {"en": "Press Enter to search", "am": "ለመፈለግ Enter ይጫኑ"},
    "enter_to_apply": {"en": "Press Enter to apply", "am": "ለማጽደቅ Enter ይጫኑ"},
    "guidance": {"en": "Type a question or a few words in Amharic and press Search, or pick an example. "
                       "Latin letters work too (selam → ሰላም).",
                 "am": "ጥያቄ ወይም ጥቂት ቃላት በአማርኛ ጽፈው «ፈልግ»ን ይጫኑ፤ ወይም ምሳሌ ይምረጡ። "
                       "በላቲን ፊደልም መጻፍ ይቻላል (selam → ሰላም)።"},
    "empty_query": {"en": "The search box is empty: type a word or a question, for example የወባ በሽታ.",
                    "am": "የፍለጋ ሳጥኑ ባዶ ነው፤ ቃል ወይም ጥያቄ ይጻፉ፤ ለምሳሌ፦ የወባ በሽታ።"},
    "searching_for": {"en": "Searching for **{converted}** (typed as “{typed}”).",
                      "am": "**{converted}** እየተፈለገ ነው (የተጻፈው፦ “{typed}”)።"},
    "not_transliterated": {"en": "“{typed}” does not look like Amharic written in Latin letters, so it was searched as "
                                 "typed.",
                           "am": "«{typed}» በላቲን ፊደል የተጻፈ አማርኛ አይመስልም፤ ስለዚህ እንደተጻፈ ተፈልጓል።"},
    "no_searchable_words": {"en": "The search has no words to look for (only punctuation or symbols?). Type a word.",
                            "am": "ፍለጋው የሚፈለግ ቃል የለውም (ሥርዓተ ነጥብ ወይም ምልክት ብቻ ይሆን?)። ቃል ይጻፉ።"},
    "no_results": {"en": "No results. Try other words.", "am": "ምንም ውጤት አልተገኘም። ሌላ ቃል ይሞክሩ።"},
    "no_word_found": {"en": "No document contains a word of the search; these results match by meaning.",
                      "am": "የፍለጋውን ቃል የያዘ ሰነድ የለም፤ እነዚህ ውጤቶች በትርጉም የተገኙ ናቸው።"},
    # -- summary line -------------------------------------------------------------------------------
    "results_count": {"en": "{n} results", "am": "{n} ውጤቶች"},
    "results_one": {"en": "1 result", "am": "1 ውጤት"},
    "ms": {"en": "{value} ms", "am": "{value} ሚሊ ሰከንድ"},
    "seconds": {"en": "{value} s", "am": "{value} ሰከንድ"},
    "reranked_in": {"en": "reranked in {time}", "am": "በ{time} ዳግም ተደርድሯል"},
    "reranking_now": {"en": "reranking the top {n}…", "am": "የመጀመሪያዎቹ {n} ዳግም እየተደረደሩ ነው…"},
    "reranked_so_far": {"en": "reranked the top {done} of {of}, the rest on the way…",
                        "am": "ከ{of} ውስጥ የመጀመሪያዎቹ {done} ዳግም ተደርድረዋል፤ ቀሪዎቹ እየተደረደሩ ነው…"},
    # -- result cards -------------------------------------------------------------------------------
    # a card's label when none of its shown words is highlighted: what the stages that ran did
    "found_dense": {"en": "found by meaning", "am": "በትርጉም የተገኘ"},
    "found_dense_why": {"en": "Only meaning-based search found this document: it has none of the search's words.",
                        "am": "ይህን ሰነድ ያገኘው በትርጉም መፈለግ ብቻ ነው፤ የፍለጋው ቃላት በውስጡ የሉም።"},
    "found_bm25": {"en": "found by keywords", "am": "በቃል የተገኘ"},
    "found_bm25_why": {"en": "Keyword search found a word of the search, or a form of it, in another part of this "
                             "document.",
                       "am": "የቃል ፍለጋው የፍለጋውን ቃል ወይም የቃሉን ሌላ መልክ በዚህ ሰነድ ሌላ ክፍል ውስጥ አግኝቷል።"},
    "found_both": {"en": "found by keywords and by meaning", "am": "በቃልና በትርጉም የተገኘ"},
    "found_both_why": {"en": "Keyword search found a word of the search, or a form of it, in another part of this "
                             "document, and meaning-based search found it too.",
                       "am": "የቃል ፍለጋው የፍለጋውን ቃል ወይም የቃሉን ሌላ መልክ በዚህ ሰነድ ሌላ ክፍል ውስጥ አግኝቷል፤ "
                             "በትርጉም መፈለግም አግኝቶታል።"},
    "doc_id": {"en": "document id", "am": "የሰነዱ መለያ"},
    "more": {"en": "More", "am": "ተጨማሪ"},
    "passage_heading": {"en": "The matching passage", "am": "የተገኘው ክፍል"},
    "full_document": {"en": "The whole document", "am": "ሙሉ ሰነዱ"},
    "moved_by_rerank": {"en": "rank change made by reranking", "am": "በዳግም መደርደር የተለወጠ ደረጃ"},
    "rank_new": {"en": "new", "am": "አዲስ"},
    "not_found_by": {"en": "not found", "am": "አልተገኘም"},
    # -- stages -------------------------------------------------------------------------------------
    "stage_bm25": {"en": "Keywords", "am": "ቃል"},
    "stage_dense": {"en": "Meaning", "am": "ትርጉም"},
    "stage_fused": {"en": "Combined", "am": "ጥምር"},
    "stage_rerank": {"en": "Reranked", "am": "ዳግም የተደረደረ"},
    # -- the ranking story --------------------------------------------------------------------------
    "flow_title": {"en": "How the ranking was made", "am": "ደረጃው እንዴት እንደተሰጠ"},
    "flow_caption": {"en": "Each line is one document and shows its rank at each stage (1 is the top). "
                           "Point at a line to see the document. A document has the same colour everywhere on this page.",
                     "am": "እያንዳንዱ መስመር አንድ ሰነድ ነው፤ በየእርከኑ ያገኘውን ደረጃ ያሳያል (1 የመጀመሪያው ነው)። "
                           "ሰነዱን ለማየት መስመሩ ላይ ያመልክቱ። አንድ ሰነድ በዚህ ገጽ ላይ በየቦታው በአንድ ቀለም ይታያል።"},
    "flow_single": {"en": "Only one stage ran for this search ({stage}), so there is no movement between stages to show.",
                    "am": "በዚህ ፍለጋ የሠራው አንድ እርከን ብቻ ({stage}) ስለሆነ በእርከኖች መካከል የሚታይ ለውጥ የለም።"},
    "axis_stage": {"en": "Stage", "am": "እርከን"},
    "axis_rank": {"en": "Rank", "am": "ደረጃ"},
    "axis_document": {"en": "Document", "am": "ሰነድ"},
    # -- missing models, said once ------------------------------------------------------------------
    "off_dense": {"en": "Meaning-based search is off: its model is not on this computer. Keyword search works.",
                  "am": "በትርጉም መፈለግ ጠፍቷል፤ ሞዴሉ በዚህ ኮምፒውተር ላይ የለም። በቃል መፈለግ ይሠራል።"},
    "off_rerank": {"en": "Reranking is off: its model is not on this computer. Results are ranked without it.",
                   "am": "ዳግም መደርደር ጠፍቷል፤ ሞዴሉ በዚህ ኮምፒውተር ላይ የለም። ውጤቶቹ ያለ እሱ ይደረደራሉ።"},
    "off_both": {"en": "Meaning-based search and reranking are off: their models are not on this computer. "
                       "Keyword search works.",
                 "am": "በትርጉም መፈለግና ዳግም መደርደር ጠፍተዋል፤ ሞዴሎቹ በዚህ ኮምፒውተር ላይ የሉም። በቃል መፈለግ ይሠራል።"},
    "off_lexical_index": {"en": "This collection was prepared for keyword search only.",
                          "am": "ይህ ስብስብ የተዘጋጀው ለቃል ፍለጋ ብቻ ነው።"},
    "how_to_turn_on": {"en": "How to turn it on", "am": "እንዴት ማብራት ይቻላል"},
    "how_reader": {"en": "Only whoever runs this server can turn it on: show them the part below.",
                   "am": "ይህን ማብራት የሚችለው አገልጋዩን የሚያስተዳድረው ሰው ብቻ ነው፤ ከታች ያለውን ክፍል ያሳዩት።"},
    "how_admin": {"en": "For the administrator of this server", "am": "ለዚህ አገልጋይ አስተዳዳሪ"},
    "how_missing_dense": {"en": "Meaning-based search needs the model {model}, which is not on this server.",
                          "am": "በትርጉም መፈለግ {model} የተባለውን ሞዴል ይፈልጋል፤ ሞዴሉ በዚህ አገልጋይ ላይ የለም።"},
    "how_missing_rerank": {"en": "Reranking needs the model {model}, which is not on this server.",
                           "am": "ዳግም መደርደር {model} የተባለውን ሞዴል ይፈልጋል፤ ሞዴሉ በዚህ አገልጋይ ላይ የለም።"},
    "how_missing_service": {"en": "The search service at {url} runs without the models it needs.",
                            "am": "በ{url} ያለው የፍለጋ አገልግሎት የሚያስፈልጉት ሞዴሎች ሳይኖሩት እየሠራ ነው።"},
    "how_step_download": {"en": "1. On a computer with internet, make a bundle of the models:",
                          "am": "1. ኢንተርኔት ባለው ኮምፒውተር ላይ የሞዴሎቹን ጥቅል ያዘጋጁ፦"},
    "how_step_copy": {"en": "2. Copy the folder {bundle} from there to this server, to this place:",
                      "am": "2. {bundle} የተባለውን አቃፊ ከዚያ ወደዚህ አገልጋይ፣ ወደዚህ ቦታ ይቅዱ፦"},
    "how_step_restart": {"en": "3. Stop the page and start it again with the models' folders:",
                         "am": "3. ገጹን አቁመው በሞዴሎቹ አቃፊዎች እንደገና ያስጀምሩ፦"},
    "how_step_serve": {"en": "2. Copy the folder {bundle} to the service's server and start the service again with the "
                             "models' folders (MODELS: where you copied it):",
                       "am": "2. {bundle} የተባለውን አቃፊ ወደ አገልግሎቱ አገልጋይ ቀድተው አገልግሎቱን በሞዴሎቹ አቃፊዎች "
                             "እንደገና ያስጀምሩ (MODELS፦ የቀዱበት ቦታ)፦"},
    "how_step_rebuild": {"en": "Then prepare this collection again with the meaning model (only the meaning part is new "
                               "work):",
                         "am": "ከዚያም ይህን ስብስብ በትርጉም ሞዴሉ እንደገና ያዘጋጁ (አዲስ ሥራ የሚሆነው የትርጉሙ ክፍል ብቻ ነው)፦"},
    "how_rebuild_gone": {"en": "The files this collection was prepared from are no longer on this server: add them "
                               "again under “Add your own files”, with meaning-based search on.",
                         "am": "ይህ ስብስብ የተዘጋጀባቸው ፋይሎች በዚህ አገልጋይ ላይ የሉም፤ «የራስዎን ፋይሎች ያክሉ» በሚለው ክፍል "
                               "በትርጉም መፈለግ በርቶ እንደገና ያክሏቸው።"},
    "how_sample_auto": {"en": "The sample collection gains meaning-based search by itself once the meaning model is "
                              "here.",
                        "am": "የናሙና ስብስቡ የትርጉም ሞዴሉ እዚህ ሲገኝ በትርጉም መፈለግን በራሱ ያገኛል።"},
    # -- collections, loading -----------------------------------------------------------------------
    "collection_label": {"en": "Collection", "am": "ስብስብ"},
    "sample_name": {"en": "sample", "am": "ናሙና"},  # the sample collection (its folder and URL name stay "sample")
    "about_collection": {"en": "About this collection", "am": "ስለዚህ ስብስብ"},
    # its rows (search.ui.display.collection_facts): for readers, then (expert view) the technical ones
    "about_name": {"en": "Name", "am": "ስም"},
    "about_documents": {"en": "Documents", "am": "ሰነዶች"},
    "about_passages": {"en": "Passages", "am": "ክፍሎች"},
    "about_built": {"en": "Prepared on", "am": "የተዘጋጀበት ቀን"},
    "about_search": {"en": "Search by", "am": "የፍለጋ ዓይነት"},
    "about_search_both": {"en": "keywords and meaning", "am": "በቃልና በትርጉም"},
    "about_search_lexical": {"en": "keywords only", "am": "በቃል ብቻ"},
    "about_rerank": {"en": "Reranking", "am": "ዳግም መደርደር"},
    "about_rerank_on": {"en": "on", "am": "በርቷል"},
    "about_rerank_off": {"en": "off", "am": "ጠፍቷል"},
    "about_reranker": {"en": "Reranker", "am": "የዳግም መደርደሪያ ሞዴል"},
    "about_dense_model": {"en": "Meaning model", "am": "የትርጉም ሞዴል"},
    "about_corpus": {"en": "Prepared from", "am": "የተዘጋጀው ከ"},
    "about_corpus_sha": {"en": "Files' SHA-256", "am": "የፋይሎቹ SHA-256"},
    "about_analyzer": {"en": "Word analysis", "am": "የቃላት ትንተና"},
    "about_bm25": {"en": "Keyword search (BM25)", "am": "የቃል ፍለጋ (BM25)"},
    "about_terms": {"en": "{n} words", "am": "{n} ቃላት"},
    "about_chunking": {"en": "Passage length", "am": "የክፍል ርዝመት"},
    "about_chunk_value": {"en": "up to {tokens} tokens, {overlap} sentence overlap",
                          "am": "እስከ {tokens} ቶከን፣ {overlap} ዓረፍተ ነገር መደራረብ"},
    "about_fingerprint": {"en": "Meaning model's fingerprint", "am": "የትርጉም ሞዴሉ አሻራ"},
    "about_shards": {"en": "Parts", "am": "ክፍልፋዮች"},
    "about_format": {"en": "Format version", "am": "የቅርጸት ስሪት"},
    "analyzer_nfc": {"en": "Unicode NFC", "am": "የዩኒኮድ NFC"},
    "analyzer_fold": {"en": "homophone letters folded", "am": "ተመሳሳይ ድምፅ ያላቸው ፊደላት ተዋህደዋል"},
    "analyzer_numerals": {"en": "Ethiopic numerals", "am": "የግዕዝ ቁጥሮች"},
    "analyzer_lowercase": {"en": "lower case", "am": "ትንሽ የላቲን ፊደል"},
    "analyzer_stem": {"en": "stems", "am": "ግንዶች"},
    "analyzer_keep_surface": {"en": "words as written", "am": "ቃላት እንደተጻፉ"},
    "analyzer_roots": {"en": "roots", "am": "ሥሮች"},
    "analyzer_stopwords": {"en": "common words left out", "am": "የተለመዱ ቃላት ተትተዋል"},
    "building_sample": {"en": "Preparing the sample collection (first start only)…",
                        "am": "የናሙና ስብስቡ እየተዘጋጀ ነው (በመጀመሪያ ጊዜ ብቻ)…"},
    "loading": {"en": "Loading the collection and the models…", "am": "ስብስቡና ሞዴሎቹ እየተጫኑ ነው…"},
    "no_collection": {"en": "No collection was found.", "am": "ምንም ስብስብ አልተገኘም።"},
    "api_unreachable": {"en": "The search service cannot be reached:", "am": "የፍለጋ አገልግሎቱን ማግኘት አልተቻለም፦"},
    "cannot_open": {"en": "This collection cannot be opened:", "am": "ይህን ስብስብ መክፈት አልተቻለም፦"},
    "went_wrong": {"en": "Something went wrong ({error}). The details are in the server log.",
                   "am": "ችግር ተፈጥሯል ({error})። ዝርዝሩ በአገልጋዩ መዝገብ ውስጥ አለ።"},
    # -- uploads ------------------------------------------------------------------------------------
    "read_only": {"en": "This page is for searching only: its collections are changed by the administrator of this "
                        "server.",
                  "am": "ይህ ገጽ ለፍለጋ ብቻ ነው፤ ስብስቦቹን የሚቀይረው የዚህ አገልጋይ አስተዳዳሪ ነው።"},
    "upload_title": {"en": "Add your own files", "am": "የራስዎን ፋይሎች ያክሉ"},
    "upload_files": {"en": "JSONL, CSV/TSV, or .txt/.md files", "am": "JSONL፣ CSV/TSV ወይም .txt/.md ፋይሎች"},
    "upload_choose": {"en": "Choose files", "am": "ፋይሎችን ይምረጡ"},
    "upload_limit": {"en": "Up to {mb} MB a file · JSONL, CSV, TSV, TXT, MD",
                     "am": "በአንድ ፋይል እስከ {mb} ሜጋ ባይት · JSONL፣ CSV፣ TSV፣ TXT፣ MD"},
    "upload_name": {"en": "Collection name", "am": "የስብስቡ ስም"},
    "upload_default_name": {"en": "my-collection", "am": "የእኔ-ስብስብ"},
    "upload_text_column": {"en": "Which column holds the text?", "am": "ጽሑፉ የትኛው ዓምድ ውስጥ ነው?"},
    "upload_title_column": {"en": "Which column holds the title?", "am": "ርዕሱ የትኛው ዓምድ ውስጥ ነው?"},
    "upload_no_column": {"en": "(no title)", "am": "(ርዕስ የለም)"},
    "upload_skip_bad": {"en": "Skip bad records", "am": "የተበላሹ መዝገቦችን ዝለል"},
    "upload_dense": {"en": "Meaning-based search", "am": "በትርጉም መፈለግ"},
    "upload_dense_help": {"en": "Needs the meaning model; without it the files are prepared for keyword search.",
                          "am": "የትርጉም ሞዴሉን ይፈልጋል፤ ሞዴሉ ከሌለ ፋይሎቹ ለቃል ፍለጋ ይዘጋጃሉ።"},
    "upload_dense_off": {"en": "The meaning model is not on this computer: the files will be prepared for keyword search.",
                         "am": "የትርጉም ሞዴሉ በዚህ ኮምፒውተር ላይ የለም፤ ፋይሎቹ ለቃል ፍለጋ ይዘጋጃሉ።"},
    "upload_replace": {"en": "Replace the collection of that name", "am": "በዚህ ስም ያለውን ስብስብ ተካ"},
    "upload_build": {"en": "Prepare for search", "am": "ለፍለጋ አዘጋጅ"},
    "upload_add": {"en": "Add to the collection of that name", "am": "በዚህ ስም ባለው ስብስብ ላይ ጨምር"},
    "upload_add_help": {"en": "Documents whose id the collection holds replace the old ones; nothing is prepared again.",
                        "am": "መለያቸው በስብስቡ ውስጥ ያለ ሰነዶች አሮጌዎቹን ይተካሉ፤ ሌላው እንደገና አይዘጋጅም።"},
    "upload_added": {"en": "Added {docs} documents to “{name}” ({replaced} replacing older ones); it now holds {total}.",
                     "am": "{docs} ሰነዶች ወደ «{name}» ተጨምረዋል ({replaced}ቱ አሮጌዎቹን ተክተዋል)፤ አሁን {total} ሰነዶች ይዟል።"},
    "upload_failed": {"en": "The files could not be prepared:", "am": "ፋይሎቹን ማዘጋጀት አልተቻለም፦"},
    "upload_done": {"en": "Prepared {docs} documents ({passages} passages) as “{name}”.",
                    "am": "{docs} ሰነዶች ({passages} ክፍሎች) «{name}» በሚል ስም ተዘጋጅተዋል።"},
    "upload_skip_hint": {"en": "Tick “Skip bad records” to prepare the rest of the file.",
                         "am": "የቀረውን ፋይል ለማዘጋጀት «የተበላሹ መዝገቦችን ዝለል»ን ይምረጡ።"},
    "upload_skipped": {"en": "Skipped {n} bad records.", "am": "{n} የተበላሹ መዝገቦች ተዘልለዋል።"},
    "upload_lexical": {"en": "Prepared for keyword search only: the meaning model is not on this computer.",
                       "am": "የተዘጋጀው ለቃል ፍለጋ ብቻ ነው፤ የትርጉም ሞዴሉ በዚህ ኮምፒውተር ላይ የለም።"},
    "progress_reading": {"en": "Reading the files…", "am": "ፋይሎቹ እየተነበቡ ነው…"},
    "progress_lexical index": {"en": "Preparing keyword search…", "am": "የቃል ፍለጋ እየተዘጋጀ ነው…"},
    "progress_embedding": {"en": "Preparing meaning-based search…", "am": "በትርጉም መፈለግ እየተዘጋጀ ነው…"},
    "progress_finishing": {"en": "Finishing…", "am": "በማጠናቀቅ ላይ…"},
    "progress_done": {"en": "Done.", "am": "ተጠናቋል።"},
    # -- adapting the meaning model to a collection (expert view) ---------------------------------------
    "adapt_title": {"en": "Adapt to this collection", "am": "ለዚህ ስብስብ ማላመድ"},
    "adapt_intro": {"en": "Teach the meaning model the language of this collection: it learns from the titles of "
                          "{n} documents, each with its own document. It works in the background; search keeps working.",
                    "am": "የትርጉም ሞዴሉን የዚህን ስብስብ ቋንቋ ያስተምሩት፤ ከ{n} ሰነዶች ርዕሶች ይማራል (እያንዳንዱ ርዕስ "
                          "ከራሱ ሰነድ ጋር)። ሥራው ከበስተጀርባ ይካሄዳል፤ ፍለጋው መሥራቱን ይቀጥላል።"},
    "adapt_button": {"en": "Adapt", "am": "አላምድ"},
    "adapt_again": {"en": "Adapt again", "am": "እንደገና አላምድ"},
    "adapt_resumes": {"en": "A stopped run was found: adapting continues where it stopped, with the time budget "
                            "chosen when it started.",
                      "am": "የቆመ ሥራ ተገኝቷል፤ ማላመዱ ካቆመበት፣ ሲጀመር በተመረጠው የጊዜ ገደብ ይቀጥላል።"},
    "adapt_estimate": {"en": "On this computer adapting takes about {time}: {steps} training steps of {batch} titles, "
                             "with finding hard examples and measuring before and after ({source}).",
                       "am": "በዚህ ኮምፒውተር ላይ ማላመዱ {time} ገደማ ይወስዳል፦ እያንዳንዳቸው {batch} ርዕሶች ያሏቸው "
                             "{steps} የሥልጠና እርምጃዎች፣ አስቸጋሪ ምሳሌዎችን መፈለግና ከማላመዱ በፊትና በኋላ መለካትን "
                             "ጨምሮ ({source})።"},
    "adapt_source_measured": {"en": "timed over a few steps on {when}", "am": "{when} በጥቂት እርምጃዎች የተለካ"},
    "adapt_source_run": {"en": "the pace of the adaptation of {when}", "am": "{when} በተደረገው ማላመድ ፍጥነት"},
    "adapt_estimate_unknown": {"en": "How long adapting takes depends on this computer: measure it first "
                                     "(about a minute, in the background).",
                               "am": "ማላመዱ የሚወስደው ጊዜ በዚህ ኮምፒውተር ፍጥነት ይወሰናል፤ መጀመሪያ ይለኩት "
                                     "(አንድ ደቂቃ ገደማ፣ ከበስተጀርባ)።"},
    "adapt_measure_button": {"en": "Measure the time", "am": "ጊዜውን ለካ"},
    "adapt_measuring": {"en": "Measuring how fast this computer trains: a few training steps.",
                        "am": "ይህ ኮምፒውተር በምን ያህል ፍጥነት እንደሚያሠለጥን እየተለካ ነው፤ ጥቂት የሥልጠና እርምጃዎች።"},
    "adapt_budget": {"en": "Time budget (minutes)", "am": "የጊዜ ገደብ (በደቂቃ)"},
    "adapt_budget_help": {"en": "Training takes only the steps that fit this time; fewer steps learn from fewer titles.",
                          "am": "ሥልጠናው በዚህ ጊዜ ውስጥ የሚገቡትን እርምጃዎች ብቻ ይሠራል፤ ጥቂት እርምጃዎች ከጥቂት ርዕሶች ይማራሉ።"},
    "adapt_budget_partial": {"en": "{steps} of the {total} steps fit in {time}: the model learns from about {pct}% "
                                   "of the titles.",
                             "am": "በ{time} ውስጥ ከ{total} እርምጃዎች {steps}ቱ ይገባሉ፤ ሞዴሉ ከርዕሶቹ {pct}% ገደማ ይማራል።"},
    "adapt_off_budget": {"en": "This time budget is too short for even one training step with the preparation: "
                               "choose more minutes.",
                         "am": "ይህ የጊዜ ገደብ ከዝግጅቱ ጋር ለአንድ የሥልጠና እርምጃ እንኳ አይበቃም፤ ተጨማሪ ደቂቃዎችን ይምረጡ።"},
    "adapt_preparing": {"en": "Preparing: reading the titles, finding hard examples, measuring the model as it is.",
                        "am": "በዝግጅት ላይ፦ ርዕሶቹ እየተነበቡ፣ አስቸጋሪ ምሳሌዎች እየተፈለጉ፣ ሞዴሉ እንዳለ እየተለካ ነው።"},
    "adapt_training": {"en": "Training: step {done} of {total}.", "am": "ሥልጠና፦ ከ{total} እርምጃዎች {done} ተጠናቀዋል።"},
    "adapt_evaluating": {"en": "Measuring the adapted model.", "am": "የተላመደው ሞዴል እየተለካ ነው።"},
    "adapt_eta": {"en": "About {time} left.", "am": "የቀረው ጊዜ {time} ገደማ ነው።"},
    "adapt_elapsed": {"en": "{time} so far.", "am": "እስካሁን {time}።"},
    "adapt_running": {"en": "You can keep searching meanwhile.", "am": "እስከዚያው መፈለግ ይችላሉ።"},
    "adapt_stop": {"en": "Stop", "am": "አቁም"},
    "adapt_stopping": {"en": "Stopping after this step; the work so far is kept.",
                       "am": "ከዚህ እርምጃ በኋላ ይቆማል፤ እስካሁን የተሠራው ይቀመጣል።"},
    "adapt_stopped": {"en": "Adapting stopped after step {done} of {total}; the work so far is kept, and Adapt "
                            "continues it.",
                      "am": "ማላመዱ ከ{total} እርምጃዎች {done}ኙ ከተሠሩ በኋላ ቆሟል፤ እስካሁን የተሠራው ተቀምጧል፤ "
                            "«አላምድ»ን ሲጫኑ ይቀጥላል።"},
    "adapt_done": {"en": "The adapted model is ready: {steps} training steps on {pairs} titles.",
                   "am": "የተላመደው ሞዴል ዝግጁ ነው፤ በ{pairs} ርዕሶች ላይ {steps} የሥልጠና እርምጃዎች ተሠርተዋል።"},
    "adapt_figures": {"en": "How well {n} titles kept out of training find their own document, before and after "
                            "(1 is perfect):",
                      "am": "ከሥልጠና የተለዩ {n} ርዕሶች የየራሳቸውን ሰነድ ምን ያህል እንደሚያገኙ፣ ከማላመዱ በፊትና በኋላ "
                            "(1 ፍጹም ነው)፦"},
    "adapt_before": {"en": "before", "am": "በፊት"},
    "adapt_after": {"en": "after", "am": "በኋላ"},
    "adapt_where": {"en": "The adapted model's folder, next to the collection:",
                    "am": "የተላመደው ሞዴል አቃፊ (ከስብስቡ አጠገብ)፦"},
    "adapt_rebuild_intro": {"en": "Search uses the adapted model once the collection is prepared again with it: only "
                                  "meaning-based search is redone; the documents stay as they are.",
                            "am": "ስብስቡ በተላመደው ሞዴል እንደገና ሲዘጋጅ ፍለጋው እሱን ይጠቀማል፤ እንደገና የሚሠራው በትርጉም "
                                  "መፈለግ ብቻ ነው፤ ሰነዶቹ እንዳሉ ይቆያሉ።"},
    "adapt_rebuild_button": {"en": "Prepare again with the adapted model", "am": "በተላመደው ሞዴል እንደገና አዘጋጅ"},
    "adapt_rebuild_running": {"en": "Search uses the collection as it was until it is ready.",
                              "am": "እስኪዘጋጅ ድረስ ፍለጋው ስብስቡን እንደነበረ ይጠቀማል።"},
    "adapt_rebuilt": {"en": "The collection now searches with the adapted model “{model}”.",
                      "am": "ስብስቡ አሁን በተላመደው ሞዴል «{model}» ይፈለጋል።"},
    "adapt_off_api": {"en": "Adapting is available when the page runs the collection itself, not through a search "
                            "service.",
                      "am": "ማላመድ የሚቻለው ገጹ ስብስቡን ራሱ ሲያስኬድ ነው እንጂ በፍለጋ አገልግሎት በኩል አይደለም።"},
    "adapt_off_lexical": {"en": "This collection was prepared for keyword search only, so there is no meaning model "
                                "to adapt.",
                          "am": "ይህ ስብስብ የተዘጋጀው ለቃል ፍለጋ ብቻ ስለሆነ የሚላመድ የትርጉም ሞዴል የለም።"},
    "adapt_off_encoder": {"en": "The meaning model of this collection is not on this computer, so it cannot be "
                                "adapted here.",
                          "am": "የዚህ ስብስብ የትርጉም ሞዴል በዚህ ኮምፒውተር ላይ ስለሌለ እዚህ ማላመድ አይቻልም።"},
    "adapt_off_titles": {"en": "Adapting learns from document titles, and only {n} of the {docs} documents here have "
                               "a usable one (at least {min} are needed).",
                         "am": "ማላመድ ከሰነድ ርዕሶች ይማራል፤ እዚህ ካሉት {docs} ሰነዶች የሚያገለግል ርዕስ ያላቸው {n} "
                               "ብቻ ናቸው (ቢያንስ {min} ያስፈልጋሉ)።"},
    "adapt_off_packages": {"en": "Adapting needs the training packages, which are not installed here "
                                 "(pip install 'amharic-search[train]').",
                           "am": "ማላመድ የሥልጠና ጥቅሎችን ይፈልጋል፤ እነሱ እዚህ አልተጫኑም (pip install 'amharic-search[train]')።"},
    "adapt_off_sharded": {"en": "This collection is split into parts for several servers: adapt it before splitting it.",
                          "am": "ይህ ስብስብ ለብዙ አገልጋዮች ተከፋፍሏል፤ ከመከፋፈሉ በፊት ያላምዱት።"},
    "adapt_error_model": {"en": "The model could not be loaded: it is not on this computer and cannot be downloaded.",
                          "am": "ሞዴሉን መጫን አልተቻለም፤ በዚህ ኮምፒውተር ላይ የለም፣ ማውረድም አይቻልም።"},
    "adapt_error_failed": {"en": "Adapting stopped because of an error ({error}); the details are in the server log.",
                           "am": "በስህተት ምክንያት ማላመዱ ቆሟል ({error})፤ ዝርዝሩ በአገልጋዩ መዝገብ ውስጥ አለ።"},
    "adapt_error_rebuild": {"en": "Preparing the collection again stopped because of an error ({error}); the "
                                  "collection is as it was, and the details are in the server log.",
                            "am": "በስህተት ምክንያት ስብስቡን እንደገና ማዘጋጀቱ ቆሟል ({error})፤ ስብስቡ እንደነበረ ነው፤ "
                                  "ዝርዝሩ በአገልጋዩ መዝገብ ውስጥ አለ።"},
    "minutes": {"en": "{value} min", "am": "{value} ደቂቃ"},
    # -- expert controls ----------------------------------------------------------------------------
    "settings": {"en": "Search settings", "am": "የፍለጋ ቅንብሮች"},
    "top_k": {"en": "Results", "am": "የውጤቶች ብዛት"},
    "first_stage": {"en": "First stage", "am": "የመጀመሪያ እርከን"},
    "mode_hybrid": {"en": "Keywords + meaning", "am": "ቃልና ትርጉም"},
    "mode_lexical": {"en": "Keywords (BM25)", "am": "ቃል (BM25)"},
    "mode_dense": {"en": "Meaning only", "am": "ትርጉም ብቻ"},
    "rerank_toggle": {"en": "Rerank with the cross-encoder", "am": "በክሮስ-ኢንኮደሩ ዳግም ደርድር"},
    "rerank_missing": {"en": "Reranking is not available here (see the notice at the top).",
                       "am": "ዳግም መደርደር እዚህ አይገኝም (ከላይ ያለውን ማሳሰቢያ ይመልከቱ)።"},
    "dense_missing": {"en": "Meaning-based search is not available for this collection here, so the first stage is "
                            "keyword search.",
                      "am": "ለዚህ ስብስብ በትርጉም መፈለግ እዚህ ስለማይገኝ የመጀመሪያው እርከን የቃል ፍለጋ ነው።"},
    "fusion": {"en": "Combine keywords and meaning by", "am": "ቃልና ትርጉምን የማዋሃጃ ዘዴ"},
    "fusion_help": {"en": "Reciprocal rank fusion, or a normalized weighted sum of the scores; the default is the "
                          "collection's own (set by `amharic-search tune`).",
                    "am": "የደረጃ ተገላቢጦሽ ድምር (RRF) ወይም የተመዛዘነ የነጥብ ድምር፤ ነባሪው የስብስቡ የራሱ ቅንብር ነው።"},
    "fusion_rrf": {"en": "ranks (RRF)", "am": "ደረጃዎች (RRF)"},
    "fusion_weighted": {"en": "scores (weighted sum)", "am": "ነጥቦች (የተመዛዘነ ድምር)"},
    "candidates": {"en": "Candidates to rerank", "am": "ዳግም የሚደረደሩ እጩዎች"},
    "depth": {"en": "Documents from each retriever", "am": "ከእያንዳንዱ ፈላጊ የሚወሰዱ ሰነዶች"},
    "max_length": {"en": "The reranker reads at most (tokens)", "am": "ዳግም መደርደሪያው የሚያነበው ከፍተኛ ቶከን"},
    "max_length_help": {"en": "Shorter is faster and loses quality.", "am": "ባጠረ ቁጥር ይፈጥናል፤ ጥራቱ ግን ይቀንሳል።"},
    "window": {"en": "Of a long passage the reranker reads", "am": "ከረጅም ክፍል ዳግም መደርደሪያው የሚያነበው"},
    "window_best": {"en": "the best-matching sentences", "am": "በጣም የሚዛመዱትን ዓረፍተ ነገሮች"},
    "window_head": {"en": "the beginning", "am": "መጀመሪያውን"},
    "translit": {"en": "Turn Latin typing into Ethiopic (selam → ሰላም)", "am": "የላቲን ፊደልን ወደ ግዕዝ ቀይር (selam → ሰላም)"},
    "tab_results": {"en": "Results", "am": "ውጤቶች"},
    "tab_compare": {"en": "Compare stages", "am": "እርከኖችን አወዳድር"},
    "timings_title": {"en": "Time per stage", "am": "የእያንዳንዱ እርከን ጊዜ"},
    "timing_bm25": {"en": "keywords", "am": "ቃል"},
    "timing_dense": {"en": "meaning", "am": "ትርጉም"},
    "timing_fusion": {"en": "combining", "am": "ማዋሃድ"},
    "timing_rerank": {"en": "reranking", "am": "ዳግም መደርደር"},
    "timing_ms": {"en": "time (milliseconds)", "am": "ጊዜ (ሚሊ ሰከንድ)"},
    # -- compare view -------------------------------------------------------------------------------
    "cmp_lexical": {"en": "Keywords alone", "am": "ቃል ብቻ"},
    "cmp_hybrid": {"en": "Keywords + meaning", "am": "ቃልና ትርጉም"},
    "cmp_lexical_rerank": {"en": "Keywords, reranked", "am": "ቃል፣ ዳግም የተደረደረ"},
    "cmp_hybrid_rerank": {"en": "Keywords + meaning, reranked", "am": "ቃልና ትርጉም፣ ዳግም የተደረደረ"},
    "cmp_single": {"en": "Only keyword search can run for this collection here, so there is nothing to compare "
                         "it with. Meaning-based search or reranking would each add a column.",
                   "am": "ለዚህ ስብስብ እዚህ የሚሠራው የቃል ፍለጋ ብቻ ስለሆነ የሚወዳደር ነገር የለም። "
                         "በትርጉም መፈለግ ወይም ዳግም መደርደር ቢኖሩ እያንዳንዳቸው አንድ ዓምድ ይጨምሩ ነበር።"},
    "cmp_caption": {"en": "The same document has the same colour in every column; the numbers say where the other "
                          "columns ranked it.",
                    "am": "አንድ ሰነድ በሁሉም ዓምዶች በአንድ ቀለም ይታያል፤ ቁጥሮቹ ሌሎቹ ዓምዶች የሰጡትን ደረጃ ያሳያሉ።"},
    "cmp_elsewhere": {"en": "elsewhere", "am": "በሌሎቹ"},
}


def t(key: str, lang: Lang, /, **values) -> str:
    """The string ``key`` in ``lang`` with ``values`` filled in (English if ``lang`` is unknown)."""
    entry = STRINGS[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def missing_keys() -> dict[str, list[str]]:
    """Keys that lack a language (an empty dict when the catalogue is complete)."""
    return {k: [lang for lang in LANGS if not v.get(lang)] for k, v in STRINGS.items() if any(not v.get(lang) for lang in LANGS)}
