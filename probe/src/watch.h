#ifndef HP_WATCH_H
#define HP_WATCH_H
int watch_main(int argc, char **argv);
#endif
