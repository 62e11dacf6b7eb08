/*
 * llm_rag - the pure parts of RAG chat and of the semantic cache: the
 * retrieval query, the context system message, which citations an
 * answer uses, and the semantic cache's namespace and text.
 *
 * RAG: the rag service's "context" operation answers
 * {"context":"[1] ...\n[2] ...","citations":[{"n","document_id",
 * "chunk_id",...}]}; the model gets the context in a system message put
 * first, asking for [n] markers; the reply carries the citations whose
 * markers appear in the answer, or all of them when none does.
 *
 * Semantic cache: entries live in a namespace per resolved model and
 * per everything besides the user's words that shapes the answer (the
 * system and developer messages, tools, tool_choice, response_format,
 * the RAG options); the text compared is the user content.
 *
 * Ownership: json_t * results are new references, char * results are
 * omni_malloc'ed.
 */
#ifndef LLM_RAG_H
#define LLM_RAG_H

#include <jansson.h>
#include <stddef.h>

/* Namespace: up to 80 characters of the model, '.', 32 hex digits. */
#define LLM_SEM_NS_LEN (80 + 1 + 32 + 1)

/* Text of the last user message of messages, or NULL when there is no
 * user message with text. */
char *llm_rag_query(json_t *messages);
/* The system message carrying context. */
json_t *llm_rag_system(const char *context);
/* The citations (in their order) whose [n] markers appear in answer
 * ("[2]", "[1][3]", "[1, 3]"); all of them when no marker names one of
 * them or answer is NULL. */
json_t *llm_rag_cited(const char *answer, json_t *citations);

/* The semantic cache namespace of req (an OpenAI chat body) for the
 * resolved model and the RAG options (NULL: none): only letters,
 * digits, '_', '-' and '.', as the rag service wants. */
void llm_sem_namespace(json_t *req, const char *model, json_t *rag,
                       char ns[LLM_SEM_NS_LEN]);
/* The user content of messages, one message per line; "" when none. */
char *llm_sem_text(json_t *messages);

#endif
