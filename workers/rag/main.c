/*
 * omni-rag - the RAG worker process; everything is in rag.c.
 */
#include "rag.h"

int main(int argc, char **argv)
{
    return omni_rag_main(argc, argv);
}
