#ifndef HP_SERVER_H
#define HP_SERVER_H
int server_main(int argc, char **argv);
#endif
