FROM registry.test:5000/fx-base-b-tools:testing
RUN echo cli > /etc/cli