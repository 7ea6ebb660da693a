#ifndef HP_NURSERY_H
#define HP_NURSERY_H
int nursery_main(int argc, char **argv);
#endif
